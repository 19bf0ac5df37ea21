"""Files holding personal data in clear are written owner-only (mode ``0600``).

A writer run with ``--pii include`` (and an export whose policy keeps the personal columns,
``include``) writes e-mail addresses, phone numbers, names or ids that are any of them as
they are. Created as ``open()`` creates files, such a file took the umask's mode: ``0644`` on
most machines, readable by every user of a shared one. :func:`private_target` creates the
target (or sets an existing one) to :data:`PRIVATE_MODE` before the writer opens it (the
writers truncate an existing file, which keeps its mode), and says so once on stderr per
file; files without personal data in clear keep the umask, as before. The project's id key
file is written ``0600`` the same way (:mod:`segflow.exports._pseudonym`).

A writer that replaces its target instead of truncating it (the exports write a temporary file
renamed into place; DuckDB's ``COPY ... TO`` creates the file anew) would give an existing
file the umask's mode: a list its owner had made ``0600``, or ``0640`` for a loader's group,
became readable by every user. :func:`existing_mode` and :func:`keep_mode` carry the
existing file's permission bits and group over to its replacement, as a writer that
truncates keeps them; :func:`link_target` replaces the file a symbolic link points to, not
the link.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

#: The mode of a file holding personal data in clear: read and written by its owner only.
PRIVATE_MODE = 0o600
#: The files already announced on stderr by this process.
_TOLD: set[str] = set()


def private_target(path: str | Path, private: bool = True, *, shown: str | Path | None = None,
                   why: str = "--pii include") -> None:
    """Make ``path`` an owner-only file before a writer fills it (nothing when not ``private``).

    Parameters
    ----------
    path : str or Path
        The file a writer is about to open (its folder is created when missing). A missing
        file is created empty with :data:`PRIVATE_MODE`; an existing one is set to it.
    private : bool, default True
        Whether the file will hold personal data in clear; False leaves it to the umask.
    shown : str or Path, optional
        The name the note on stderr gives (the target of a temporary file renamed into
        place); default ``path``.
    why : str, default "--pii include"
        Why the data is in clear, as the note says it.
    """
    if not private:
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT, PRIVATE_MODE)
    try:
        os.fchmod(fd, PRIVATE_MODE)  # an existing file kept its mode through O_CREAT
    finally:
        os.close(fd)
    shown = Path(shown) if shown is not None else target
    name = str(shown.resolve())
    if name not in _TOLD:
        _TOLD.add(name)
        print(f"note: {shown} holds personal data in clear ({why}): written with mode "
              "0600, readable by its owner only", file=sys.stderr)


def link_target(path: str | Path) -> Path:
    """The file a writer that replaces ``path`` must replace: the file a symbolic link points
    to (a missing one included), else ``path``. Renamed over the link, a new file took its
    place and the file it pointed to (where a loader reads) kept its old rows; a writer that
    truncates writes through the link."""
    path = Path(path)
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def existing_mode(path: str | Path) -> tuple[int, int] | None:
    """The permission bits and group of the regular file at ``path``, None when there is none
    (a missing file, or another kind of file): what :func:`keep_mode` gives its replacement."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (stat.S_IMODE(st.st_mode), st.st_gid) if stat.S_ISREG(st.st_mode) else None


def keep_mode(path: str | Path, saved: tuple[int, int] | None, *, shown: str | Path | None = None) -> None:
    """Give the file at ``path`` (the replacement of a file) the permission bits and group
    ``saved`` by :func:`existing_mode` (nothing when None). A group the user cannot give (not
    one of theirs) is left as it is, with one warning on stderr naming the file (``shown``,
    default ``path``)."""
    if saved is None:
        return
    mode, gid = saved
    if os.stat(path).st_gid != gid:
        try:
            os.chown(path, -1, gid)
        except PermissionError:
            print(f"warning: {shown or path}: could not keep the group (gid {gid}) of the file it "
                  "replaced; the new file has the user's group", file=sys.stderr)
    os.chmod(path, mode)
