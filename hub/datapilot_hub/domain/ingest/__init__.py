"""Ingestion of CSV, Excel, JSON Lines and Parquet into versioned datasets."""

from ._infer import TYPES, logical_type
from ._pipeline import MODES, Ingestor, IngestRequest, normalize_names, validate_options
from ._sniff import Limits, Sniffed, sniff

__all__ = [
    "MODES",
    "TYPES",
    "IngestRequest",
    "Ingestor",
    "Limits",
    "Sniffed",
    "logical_type",
    "normalize_names",
    "sniff",
    "validate_options",
]
