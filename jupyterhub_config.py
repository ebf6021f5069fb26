"""JupyterHub configuration of Datapilot: embedded defaults, every one overridable by env.

See README.md for the DATAPILOT_* variables. Add site-specific settings below the call.
"""

from datapilot_hub import install_datapilot

c = get_config()  # noqa: F821 - provided by JupyterHub
datapilot = install_datapilot(c)
