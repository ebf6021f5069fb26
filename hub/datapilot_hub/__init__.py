"""The JupyterHub side of Datapilot: configuration, spawner, roles and the data service."""

from ._install import install_datapilot
from .configuration import DatapilotConfig
from .permissions import PERMISSIONS, ROLE_PERMISSIONS, ROLES

__version__ = "0.1.0.dev0"

__all__ = ["PERMISSIONS", "ROLES", "ROLE_PERMISSIONS", "DatapilotConfig", "install_datapilot"]
