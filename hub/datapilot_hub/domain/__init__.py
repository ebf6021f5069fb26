"""Domain logic of the data service: no HTTP here, only catalog, storage and the hub."""
