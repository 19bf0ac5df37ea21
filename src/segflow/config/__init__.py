"""Typed settings of a segflow project (``segflow.toml``)."""

from segflow.config._schemes import RuleSettings, SchemeSettings
from segflow.config._settings import (
    PROJECT_FILENAME,
    EngineSettings,
    PeriodSettings,
    ProjectSettings,
    RfmSettings,
    ServingSettings,
    Settings,
)
from segflow.config._sources import SourceSettings

__all__ = [
    "EngineSettings",
    "PROJECT_FILENAME",
    "PeriodSettings",
    "ProjectSettings",
    "RfmSettings",
    "RuleSettings",
    "SchemeSettings",
    "ServingSettings",
    "Settings",
    "SourceSettings",
]
