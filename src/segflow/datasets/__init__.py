"""Demo data and loaders of real public datasets.

- :func:`generate_demo` writes a realistic multi-source customer base with its ground truth.
- :func:`demo_sources` and :func:`demo_project_toml` describe how to ingest it.
- :func:`load_cdnow` and :func:`load_donations_bgbb` read the public CDNOW sample and the
  donations BG/BB panel.
"""

from segflow.datasets._generate import (
    CHUNK_CUSTOMERS,
    TRANSACTION_DATE_FORMATS,
    DemoDataset,
    generate_demo,
)
from segflow.datasets._loaders import load_cdnow, load_donations_bgbb
from segflow.datasets._mapping import demo_project_toml, demo_sources
from segflow.datasets._spec import GROUPS, TRANSITION_MATRIX

__all__ = [
    "CHUNK_CUSTOMERS",
    "GROUPS",
    "TRANSACTION_DATE_FORMATS",
    "TRANSITION_MATRIX",
    "DemoDataset",
    "demo_project_toml",
    "demo_sources",
    "generate_demo",
    "load_cdnow",
    "load_donations_bgbb",
]
