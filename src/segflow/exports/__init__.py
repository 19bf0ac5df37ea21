"""Exports: segment lists with CRM-style fields and audiences to CSV, Parquet or Postgres,
in full or as the changes since the last export, with optional webhooks per change."""

from segflow._csv import neutralise_formulas, write_csv
from segflow.exports._crm import crm_segment_list, segment_changes
from segflow.exports._export import (
    ExportResult,
    export_audience,
    export_history,
    export_segments,
    watermark,
)
from segflow.exports._pii import (
    PII_ALIASES,
    PII_COLUMNS,
    PII_POLICIES,
    PII_QUALIFIERS,
    is_personal,
    mask_array,
    mask_email,
    mask_frame,
    mask_name,
    mask_phone,
    mask_value,
    personal_columns,
    phone_key,
    pii_kind,
    protect_columns,
)
from segflow.exports._segment_list import segment_list, write_segment_list
from segflow.exports._webhook import WebhookPolicy

__all__ = [
    "PII_ALIASES",
    "PII_COLUMNS",
    "PII_POLICIES",
    "PII_QUALIFIERS",
    "ExportResult",
    "WebhookPolicy",
    "crm_segment_list",
    "export_audience",
    "export_history",
    "export_segments",
    "is_personal",
    "mask_array",
    "mask_email",
    "mask_frame",
    "mask_name",
    "mask_phone",
    "mask_value",
    "neutralise_formulas",
    "personal_columns",
    "phone_key",
    "pii_kind",
    "protect_columns",
    "segment_changes",
    "segment_list",
    "watermark",
    "write_csv",
    "write_segment_list",
]
