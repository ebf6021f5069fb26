"""The JupyterHub side of Datapilot: configuration, spawner, roles and the data service."""

from __future__ import annotations

from typing import Any

from .configuration import DatapilotConfig
from .permissions import PERMISSIONS, ROLE_PERMISSIONS, ROLES

__version__ = "0.1.0.dev0"

__all__ = ["PERMISSIONS", "ROLES", "ROLE_PERMISSIONS", "DatapilotConfig", "install_datapilot"]


def __getattr__(name: str) -> Any:
    # imported on use: it pulls in JupyterHub and the authenticators (~80 MB, ~3 s), which
    # a Dask worker unpickling a recipe's tasks (datapilot_hub.domain.transform) never needs
    if name == "install_datapilot":
        from ._install import install_datapilot

        return install_datapilot
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
