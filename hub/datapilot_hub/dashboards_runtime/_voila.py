"""Voilà standalone as the runtime starts it: its secret from the environment.

The secret never goes on the command line (``/proc/<pid>/cmdline`` is readable by every
account); it is taken out of the environment before any kernel inherits it.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    """Run Voilà with ``$DATAPILOT_RUNTIME_VOILA_TOKEN`` as its token."""
    token = os.environ.pop("DATAPILOT_RUNTIME_VOILA_TOKEN")
    from voila.app import Voila

    Voila.launch_instance(argv=[*sys.argv[1:], f"--Voila.token={token}"])


if __name__ == "__main__":
    main()
