"""Keep a dashboard process's memory from the other processes of its account.

Every dashboard of an organization runs under the one dashboard account, and without
Yama (``kernel.yama.ptrace_scope``) a process may read the memory and the environment
of any other process of its account. A dashboard's code could then read the runtime's
hub token, Voilà's secret, or the token of a viewer in another dashboard's kernel.
A process marked not dumpable (``PR_SET_DUMPABLE`` 0) is out of reach: its
``/proc/<pid>/environ``, ``mem`` and ``ptrace`` are root's only.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_PR_SET_DUMPABLE = 4


def make_undumpable() -> bool:
    """Mark this process not dumpable (Linux); True when it took effect."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    return libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) == 0


def kernel_main() -> None:
    """Start an IPython kernel not dumpable (the dashboards' kernel spec runs this)."""
    make_undumpable()
    from ipykernel.kernelapp import launch_new_instance

    launch_new_instance()


if __name__ == "__main__":
    kernel_main()
