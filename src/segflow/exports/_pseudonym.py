"""Customer ids that are themselves personal data, and the keys that stand in for them.

Shops often key customers by e-mail address (or by phone number), so the ``customer_id``
column of every output would show the address in clear even where the ``email`` column is
masked, hashed or left out. The rule:

* **Which ids.** Each id is judged by its own value, by the content check's patterns
  (:mod:`segflow.exports._pii_content`): an e-mail address (:data:`EMAIL_PATTERN`) or a
  phone number (:func:`~segflow.exports._pii_content.is_phone_like`: 7 to 15 digits, not a
  bare run of digits starting with 1-9, so a plain counter ``10002345`` never is), or an id
  that contains one by the rule that masks them in free text
  (:func:`segflow.exports._pii_text.has_personal_text`: ``"Ann" <ann@example.com>``,
  ``tel:+447700900123``; ``C000123`` and ``ORD-2024-000123`` do not). Deciding
  per value, not per column, means the same customer gets the same output in every list,
  whichever rows a list holds (a ``--changes`` export of three rows, one page of the server),
  and a column mixing numbered members and guests keyed by e-mail shows no address.
* **What stands in.** ``pid-`` and the first 32 hex digits (128 bits) of the HMAC-SHA-256
  of the id (its UTF-8 bytes, exactly as stored: two ids never share a key) under the
  project's secret key (:func:`id_key`). The same customer has the same key in every
  output of the project (CRM exports, audiences, ``customers explain``, the server), so
  lists still join, and nobody without the secret can test a guessed address against it
  (a plain SHA-256 of an address can be looked up in a list of hashed addresses).
* **Where.** Every output that keeps personal data out: the exports' ``hash``, ``mask``
  and ``omit`` policies, ``segflow customers explain`` (masked by default) and the server's
  answers without ``pii=include``. ``include`` (and the server's ``pii=include`` for a role
  allowed it) writes the ids in clear.

The secret is 32 random bytes, written as hex on first need to a file beside the store
(``segflow.duckdb.idkey`` for ``segflow.duckdb``), readable by its owner only. Keep it with
the project and out of version control: deleted, a new one is made and every key changes
(lists made before no longer join with new ones); a running process reads the file again
when it changes (:func:`_read_key`). An in-memory store has a key for the process.
"""

from __future__ import annotations

import functools
import hmac
import os
import re
import secrets
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segflow._duck import arrow_table
from segflow.errors import InputError

if TYPE_CHECKING:
    import pyarrow as pa

#: What a pseudonymous key starts with: tells a key from an id at a glance.
PSEUDONYM_PREFIX = "pid-"
#: Hex digits of the HMAC a key keeps (128 bits: no two of a billion ids collide).
PSEUDONYM_HEX = 32
#: The suffix of the key file's name, beside the store's (``segflow.duckdb.idkey``).
KEY_SUFFIX = ".idkey"
#: The key of in-memory stores (one per process).
_MEMORY_KEY = secrets.token_bytes(32)


def key_file(store_path: str | Path) -> Path | None:
    """The file holding the secret of the store at ``store_path`` (None: an in-memory store)."""
    if str(store_path) == ":memory:":
        return None
    path = Path(store_path)
    return path.with_name(path.name + KEY_SUFFIX)


def _read_key(path: Path) -> bytes:
    """The secret in ``path``, made there first if there is none (exclusive create, mode 0600,
    so two processes starting together agree on one key); read again only when the file is
    another one (deleted and made again, replaced, rewritten: its inode, modification time or
    size changed), so a server and a long session follow the CLI's key."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        _create_key(path)
        st = None
    except OSError as exc:
        raise InputError(f"cannot read the pseudonym key {path}: {exc.strerror}") from exc
    try:
        st = st or os.stat(path)
    except OSError as exc:
        raise InputError(f"cannot read the pseudonym key {path}: {exc.strerror}") from exc
    return _read_key_file(path, st.st_ino, st.st_mtime_ns, st.st_size)


def _create_key(path: Path) -> None:
    """Write a new secret to ``path`` unless there is a file (exclusive create, mode 0600)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    except OSError as exc:
        raise InputError(f"cannot create the pseudonym key {path}: {exc.strerror}") from exc
    else:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(secrets.token_hex(32) + "\n")


@functools.lru_cache(maxsize=64)
def _read_key_file(path: Path, inode: int, mtime_ns: int, size: int) -> bytes:
    """The secret in ``path`` of that identity (the cache's key: ``inode``, ``mtime_ns``,
    ``size``; a file being written by another process is read until it has its text)."""
    del inode, mtime_ns, size
    for _ in range(50):  # another process may have created it and not written it yet
        try:
            text = path.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read the pseudonym key {path}: {exc}") from exc
        if text:
            break
        time.sleep(0.02)
    if not re.fullmatch(r"[0-9a-f]{64}", text):
        raise InputError(f"the pseudonym key {path} is not 64 hex digits; delete it to make a "
                         "new one (every pseudonymous customer key then changes)")
    return bytes.fromhex(text)


def id_key(store_path: str | Path) -> bytes:
    """The project's secret for pseudonymous ids, of the store at ``store_path`` (see the
    module's notes): read from :func:`key_file`, made on first need; read again when the
    file changes (one ``stat`` a call)."""
    path = key_file(store_path)
    return _MEMORY_KEY if path is None else _read_key(path.resolve())


def pseudonym(value: str, key: bytes) -> str:
    """The pseudonymous key of the id ``value``: :data:`PSEUDONYM_PREFIX` and the first
    :data:`PSEUDONYM_HEX` hex digits of HMAC-SHA-256(``key``, UTF-8 of ``value``)."""
    return _pseudonyms([value], key)[0]


def _pseudonyms(values: Sequence[str], key: bytes) -> list[str]:
    """:func:`pseudonym` of each value (the standard library's one-shot HMAC, RFC 2104)."""
    return [PSEUDONYM_PREFIX + hmac.digest(key, v.encode("utf-8", "surrogatepass"),
                                           "sha256").hex()[:PSEUDONYM_HEX] for v in values]


def personal_ids(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Whether each id (text) is itself personal data (null: False): an e-mail address or a
    phone number by the content check's patterns, of the value trimmed, or an id that
    CONTAINS one by the rule of the masked free text
    (:func:`segflow.exports._pii_text.has_personal_text`: ``"Ann" <ann@example.com>``,
    ``tel:+447700900123``, ``+1 (202) 555-0142 ext 5``). Whole-column Arrow operations (RE2,
    as the engine's); Python's regular expressions only on the few ids that are not one
    whole but hold ``@`` or a run of digits that may be a number (not a plain counter)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from segflow.exports._pii_content import _NO_PHONE, _PHONE_DIGITS, EMAIL_PATTERN
    from segflow.exports._pii_text import has_personal_text

    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not pa.types.is_string(values.type) and not pa.types.is_large_string(values.type):
        values = values.cast(pa.string())
    text = pc.utf8_trim_whitespace(values)
    has_at = pc.match_substring(text, "@")
    email = pc.and_kleene(has_at, pc.match_substring_regex(text, EMAIL_PATTERN))
    phone = pc.and_kleene(pc.match_substring_regex(text, _PHONE_DIGITS),
                          pc.invert(pc.match_substring_regex(text, _NO_PHONE)))
    whole = pc.fill_null(pc.or_(email, phone), False)
    digits = pc.and_(pc.match_substring_regex(text, _DIGIT_RUN),
                     pc.invert(pc.match_substring_regex(text, r"^[1-9][0-9]*$")))
    maybe = pc.fill_null(pc.and_(pc.invert(whole), pc.or_(has_at, digits)), False)
    if not pc.any(maybe).as_py():
        return whole
    at = pc.indices_nonzero(maybe)
    inner = [has_personal_text(v) for v in values.take(at).to_pylist()]
    out = whole.to_numpy(zero_copy_only=False).copy()
    out[at.to_numpy()] = inner
    return pa.array(out, pa.bool_())


#: A run that may hold a phone number inside an id (RE2; the candidates of
#: :func:`personal_ids`' Python check): :data:`segflow.exports._pii_text._PHONE_IN_TEXT`
#: with its look-behind as a character (RE2 has no look-around); a superset of its matches.
_DIGIT_RUN = r"(?:^|[^0-9.,\w\-])\+?\(?[0-9][0-9 ()\-]{5,}[0-9]"


def pseudonymise_array(values: pa.Array | pa.ChunkedArray, key: bytes) -> tuple[pa.Array, int]:
    """``values`` (ids) with each personal one (:func:`personal_ids`) replaced by its
    :func:`pseudonym`, and how many were; the others (and nulls) as they are, as text."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not pa.types.is_string(values.type):
        values = values.cast(pa.string())
    personal = personal_ids(values)
    n = pc.sum(personal).as_py() or 0
    if not n:
        return values, 0
    keys = pa.array(_pseudonyms(values.filter(personal).to_pylist(), key), pa.string())
    return pc.replace_with_mask(values, personal, keys), n


def pseudonymise_values(values: Sequence[Any], key: bytes) -> list[Any]:
    """Python ids with each personal one replaced by its :func:`pseudonym`; a missing value
    and any id that is not personal as it is (the server's rows, ``customers explain``)."""
    import pyarrow as pa

    text = [None if v is None else str(v) for v in values]
    personal = personal_ids(pa.array(text, pa.string())).to_pylist()
    picked = [t for t, p in zip(text, personal, strict=True) if p]
    keys = iter(_pseudonyms(picked, key))  # type: ignore[arg-type]
    return [next(keys) if p else v for v, p in zip(values, personal, strict=True)]


def pseudonymise_table(data: pa.Table, key: bytes, columns: Sequence[str] = ("customer_id",)) -> tuple[pa.Table, int]:
    """``data`` with the personal ids of ``columns`` (those it has) pseudonymised
    (:func:`pseudonymise_array`), and how many values were, in all."""
    n = 0
    for c in columns:
        if c in data.column_names:
            j = data.column_names.index(c)
            arr, k = pseudonymise_array(data.column(j), key)
            if k:
                data = data.set_column(j, data.schema.field(j).with_type(arr.type), arr)
                n += k
    return data, n


def key_table(con: Any, key: bytes) -> pa.Table:
    """The personal ids of the store open on ``con`` (a DuckDB connection: of ``customers``
    and ``customer_features``) and their keys under ``key``: columns ``key`` and ``id``."""
    import pyarrow as pa

    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    parts = [f"SELECT customer_id FROM {t}" for t in ("customers", "customer_features") if t in tables]
    if not parts:
        return pa.table({"key": pa.array([], pa.string()), "id": pa.array([], pa.string())})
    ids = arrow_table(con.execute(" UNION ".join(parts))).column(0).combine_chunks()
    ids = ids.cast(pa.string()).drop_null()
    ids = ids.filter(personal_ids(ids))
    return pa.table({"key": pa.array(_pseudonyms(ids.to_pylist(), key), pa.string()), "id": ids})


def resolve_key(table: pa.Table, customer_id: str) -> str:
    """The id whose key (in ``table``, of :func:`key_table`) is ``customer_id``, or
    ``customer_id`` itself (not a key, or no id has it): how the server's pages and
    ``segflow customers explain`` find the customer of a ``pid-...`` key."""
    import pyarrow.compute as pc

    if not customer_id.startswith(PSEUDONYM_PREFIX):
        return customer_id
    at = pc.index(table.column("key"), customer_id).as_py()
    return customer_id if at < 0 else table.column("id")[at].as_py()


def pseudonym_note(n: int, key_path: Path | None) -> str:
    """The one line a command prints on stderr when it wrote ``n`` ids as keys."""
    where = f" ({key_path})" if key_path is not None else ""
    return (f"note: {n:,} customer id(s) are e-mail addresses or phone numbers: written as "
            f"pseudonymous keys ({PSEUDONYM_PREFIX}...), the same for a customer in every output "
            f"of this project, made with its secret key{where}; --pii include writes the ids in clear")
