"""Exports: segment lists with CRM-style fields to CSV, Parquet or database tables."""

from segflow._csv import neutralise_formulas, write_csv
from segflow.exports._segment_list import segment_list, write_segment_list

__all__ = ["neutralise_formulas", "segment_list", "write_csv", "write_segment_list"]
