"""``python -m datapilot_hub.service``: run the data service."""

from .app import main

main()
