"""Ingestion of CSV, Excel, JSON Lines and Parquet into versioned datasets."""

from ._infer import TYPES, logical_type
from ._pipeline import (
    ALL_SHEETS,
    OPTION_KEYS,
    Ingestor,
    IngestRequest,
    StagedVersion,
    normalize_names,
    sheet_datasets,
    validate_options,
)
from ._sniff import EXCEL_FORMATS, Limits, Sniffed, sniff
from ._workbook import workbook_sheets

__all__ = [
    "ALL_SHEETS",
    "EXCEL_FORMATS",
    "OPTION_KEYS",
    "TYPES",
    "IngestRequest",
    "Ingestor",
    "Limits",
    "Sniffed",
    "StagedVersion",
    "logical_type",
    "normalize_names",
    "sheet_datasets",
    "sniff",
    "validate_options",
    "workbook_sheets",
]
