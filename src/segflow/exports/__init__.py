"""Exports: segment lists with CRM-style fields to CSV, Parquet or database tables."""

from segflow.exports._segment_list import neutralise_formulas, segment_list, write_segment_list

__all__ = ["neutralise_formulas", "segment_list", "write_segment_list"]
