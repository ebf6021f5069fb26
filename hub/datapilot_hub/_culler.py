"""jupyterhub-idle-culler as the hub starts it: the same program, gone at once when stopped.

The culler keeps nothing worth finishing when it is told to stop (it only asks the
hub's API to stop idle servers), yet on SIGINT it took 0.7 s to tear its interpreter
down, and JupyterHub stops its services one after the other, polling each with a
growing interval (0.1, 0.2, 0.4, 0.8, 1.6 s...): measured in ``make run``, the culler
and the data service together held a Ctrl-C up for two to six seconds.
"""

from __future__ import annotations

import os
import signal
import sys


def _exit_now(signum: int, frame: object) -> None:
    sys.stderr.flush()
    os._exit(0)


def main() -> None:
    """``python .../_culler.py ...``: jupyterhub-idle-culler's own command line.

    Run as a script, not as ``-m datapilot_hub._culler``: importing the package would
    load all of the hub side (a second's work) for nothing.
    """
    signal.signal(signal.SIGINT, _exit_now)
    signal.signal(signal.SIGTERM, _exit_now)
    from jupyterhub_idle_culler import main as culler_main

    culler_main()


if __name__ == "__main__":
    main()
