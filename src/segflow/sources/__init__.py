"""Sources: reading, mapping, validation, quarantine, de-duplication, identity resolution.

See ``docs/data.md`` for the mapping syntax, the validation rules and the return rules.
"""

from segflow.sources._ingest import IngestReport, ingest
from segflow.sources._load import LoadCounts
from segflow.sources._rules import RULES

__all__ = ["RULES", "IngestReport", "LoadCounts", "ingest"]
