"""Sources: reading, mapping, validation, quarantine, de-duplication, identity resolution.

See ``docs/data.md`` for the mapping syntax, the validation rules and the return rules.
"""

from segflow.sources._check import CheckReport, check_source
from segflow.sources._identity import (
    IdentityExplanation,
    IdentityReport,
    explain,
    identity_map,
    resolve_identities,
    unlink,
)
from segflow.sources._ingest import IngestReport, ingest
from segflow.sources._load import LoadCounts
from segflow.sources._rules import RULES

__all__ = [
    "RULES",
    "CheckReport",
    "IdentityExplanation",
    "IdentityReport",
    "IngestReport",
    "LoadCounts",
    "check_source",
    "explain",
    "identity_map",
    "ingest",
    "resolve_identities",
    "unlink",
]
