"""Discovery: find the files of a source and tell their format, name and fingerprint.

A source's ``path`` is one file, a glob or a folder (a folder's files are read directly
inside it, skipping hidden, temporary and non-data files with the reason, which the ingest
reports); the format is the stated ``format`` or inferred from the extension (a ``.gz``-style
compression suffix is looked through). :func:`file_hash` (SHA-256 of the bytes) tells a
file already loaded from a new or changed one, and :func:`relative` names a file relative
to the project in load records and messages. Staging the files found here is :mod:`segflow.sources._readers`.
"""

from __future__ import annotations

import glob
import hashlib
import re
from pathlib import Path

from segflow.config import SourceSettings
from segflow.errors import InputError
from segflow.sources._csvread import COMPRESSED

_EXTENSIONS = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".xlsx": "xlsx",
    ".duckdb": "duckdb",
    ".db": "duckdb",
}
_FILE_FORMATS = {"csv", "parquet", "jsonl", "xlsx"}


def _suffix(path: Path) -> tuple[str, str]:
    """(format suffix, compression suffix) of a file name: ``a.csv.gz`` -> (".csv", ".gz")."""
    suffixes = [x.lower() for x in path.suffixes]
    comp = suffixes[-1] if suffixes and suffixes[-1] in COMPRESSED else ""
    rest = suffixes[:-1] if comp else suffixes
    return (rest[-1] if rest else ""), comp


def source_format(source: SourceSettings, path: Path | None = None) -> str:
    """The format of a source file: stated, or inferred from the file extension."""
    if source.format:
        return source.format
    if path is None and source.path:
        path = Path(source.path)
    suffix = _suffix(path)[0] if path else ""
    if suffix in _EXTENSIONS:
        return _EXTENSIONS[suffix]
    raise InputError(
        f"source {source.name!r}: cannot tell the format from the extension {suffix!r}; "
        "set format = csv | parquet | jsonl | xlsx | duckdb | postgres",
        file=str(path) if path else None,
    )


def _skip_reason(source: SourceSettings, path: Path) -> str | None:
    """Why a file of a folder source is not read (None: it is read)."""
    if path.name.startswith((".", "~$")):
        return "hidden or temporary file"
    if path.is_dir():
        return "a folder (folder sources read the files directly inside the folder)"
    suffix, comp = _suffix(path)
    fmt = _EXTENSIONS.get(suffix)
    if fmt is None:
        return f"extension {suffix or '(none)'!r} is not a data format segflow reads"
    if source.format and source.format != fmt:
        return f"a {fmt} file, but the source's format is {source.format}"
    if comp and fmt not in ("csv", "jsonl"):
        return f"compressed ({comp}) {fmt} files are not read; decompress it"
    return None


def discover(source: SourceSettings, project_dir: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The files of a file source, sorted by name (a file, a glob or a folder), and the files
    of a folder that are not read, each with the reason."""
    if source.format == "postgres":
        return [], []
    if not source.path:
        raise InputError(f"source {source.name!r}: no path given")
    if re.match(r"^[A-Za-z][\w+.-]*://", source.path):
        raise InputError(f"source {source.name!r}: {source.path!r} is a URL; the DuckDB ingest "
                         "reads local files, folders and globs (a URL Spark reads: [engine] kind "
                         "= \"spark\", docs/scale.md)")
    raw = Path(source.path)
    base = raw if raw.is_absolute() else project_dir / raw
    skipped: list[tuple[Path, str]] = []
    if base.is_dir():
        files = []
        for p in sorted(base.iterdir()):
            reason = _skip_reason(source, p)
            if reason:
                skipped.append((p, reason))
            else:
                files.append(p)
    elif any(ch in source.path for ch in "*?["):
        files = sorted(Path(p) for p in glob.glob(str(base), recursive=True) if Path(p).is_file())
    else:
        files = [base] if base.exists() else []
    if not files:
        why = "".join(f"; {p.name}: {r}" for p, r in skipped[:5])
        raise InputError(f"source {source.name!r}: no file matches {source.path!r}{why}",
                         file=str(base))
    return files, skipped


def several_files(source: SourceSettings, project_dir: Path) -> bool:
    """Whether ``source``'s path names a set of files (a folder or a glob), not one file."""
    if not source.path or source.format == "postgres":
        return False
    raw = Path(source.path)
    base = raw if raw.is_absolute() else project_dir / raw
    return base.is_dir() or any(ch in source.path for ch in "*?[")


def discover_files(source: SourceSettings, project_dir: Path) -> list[Path]:
    """The files of a file source that are read (see :func:`discover`)."""
    return discover(source, project_dir)[0]


def file_hash(path: Path) -> str:
    """SHA-256 of the file's bytes, read in 1 MiB chunks."""
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def relative(path: Path, project_dir: Path) -> str:
    try:
        return str(path.resolve().relative_to(project_dir.resolve()))
    except ValueError:
        return str(path)
