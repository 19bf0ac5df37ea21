"""The data-quality audit: scored checks over the canonical tables (see docs/data.md)."""

from segflow.quality._audit import SEVERITIES, AuditReport, Check, audit

__all__ = ["SEVERITIES", "AuditReport", "Check", "audit"]
