"""The campaign playbook: a suggested action (retain, win back, upsell, convert, nurture) for
each segment, read from a user-editable TOML file (default: the bundled ``playbook.toml``)."""

from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from segflow.errors import ConfigError

ACTIONS = ("retain", "win back", "upsell", "convert", "nurture")
DEFAULT_PLAYBOOK = Path(__file__).with_name("playbook.toml")


@dataclass(frozen=True)
class PlaybookEntry:
    action: str
    segments: tuple[str, ...]
    goal: str = ""
    suggestion: str = ""


@dataclass(frozen=True)
class Playbook:
    """Ordered rules from segment-name patterns to actions; the first match wins.

    Attributes
    ----------
    entries : tuple of PlaybookEntry
    default : PlaybookEntry
        Used for segments that match no pattern.
    path : str
        Where the playbook was read from.
    """

    entries: tuple[PlaybookEntry, ...]
    default: PlaybookEntry
    path: str = ""

    def entry_for(self, segment: str | None) -> PlaybookEntry:
        """The entry whose pattern (case-insensitive, shell-style) first matches ``segment``."""
        name = (segment or "").lower()
        for entry in self.entries:
            if any(fnmatch.fnmatchcase(name, p.lower()) for p in entry.segments):
                return entry
        return self.default

    def suggest(self, segments: pd.Series) -> pd.DataFrame:
        """``action``, ``goal``, ``suggestion`` for each value of ``segments`` (matched once
        per distinct segment name, then mapped)."""
        names = pd.Series(segments.unique())
        table = pd.DataFrame(
            [vars(self.entry_for(None if pd.isna(s) else str(s))) for s in names],
            index=names, columns=["action", "segments", "goal", "suggestion"],
        )[["action", "goal", "suggestion"]]
        return table.reindex(segments.to_numpy()).reset_index(drop=True)

    def to_pandas(self) -> pd.DataFrame:
        """The playbook as a table: one row per (pattern, action)."""
        rows = [
            {"segment_pattern": p, "action": e.action, "goal": e.goal, "suggestion": e.suggestion}
            for e in self.entries
            for p in e.segments
        ]
        rows.append({"segment_pattern": "(anything else)", "action": self.default.action,
                     "goal": self.default.goal, "suggestion": self.default.suggestion})
        return pd.DataFrame(rows)


def load_playbook(path: str | Path | None = None) -> Playbook:
    """Read a playbook TOML file (``None``: the bundled default).

    Raises
    ------
    ConfigError
        If the file is missing, not TOML, or names an action outside :data:`ACTIONS`.
    """
    path = Path(path) if path is not None else DEFAULT_PLAYBOOK
    if not path.exists():
        raise ConfigError(f"no playbook at {path}")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    entries = tuple(_entry(item, path, i) for i, item in enumerate(raw.get("actions", []), 1))
    default = _entry({"segments": [], **raw.get("default", {"action": "nurture"})}, path, 0)
    return Playbook(entries, default, str(path))


def _entry(item: dict, path: Path, i: int) -> PlaybookEntry:
    where = f"{path}: [[actions]] entry {i}" if i else f"{path}: [default]"
    action = item.get("action")
    if action not in ACTIONS:
        raise ConfigError(f"{where}: action must be one of {', '.join(ACTIONS)}; got {action!r}")
    segments = item.get("segments", [])
    if not isinstance(segments, list) or not all(isinstance(s, str) for s in segments):
        raise ConfigError(f"{where}: segments must be a list of names or patterns")
    return PlaybookEntry(action, tuple(segments), str(item.get("goal", "")),
                         str(item.get("suggestion", "")))
