"""The data service process (a JupyterHub-managed service)."""
