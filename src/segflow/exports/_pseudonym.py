"""Customer ids that are themselves personal data, and the keys that stand in for them.

Shops often key customers by e-mail address (or by phone number), so the ``customer_id``
column of every output would show the address in clear even where the ``email`` column is
masked, hashed or left out. The rule:

* **Which ids.** Each id is judged by its own value, by the content check's patterns
  (:mod:`segflow.exports._pii_content`): an e-mail address (:data:`EMAIL_PATTERN`) or a
  phone number (:func:`~segflow.exports._pii_content.is_phone_like`: 7 to 15 digits, not a
  bare run of digits starting with 1-9, so a plain counter ``10002345`` never is). Deciding
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
(lists made before no longer join with new ones). An in-memory store has a key for the
process.
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


@functools.lru_cache(maxsize=64)
def _read_key(path: Path) -> bytes:
    """The secret in ``path``, made there first if there is none (exclusive create, mode 0600,
    so two processes starting together agree on one key)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    except OSError as exc:
        raise InputError(f"cannot create the pseudonym key {path}: {exc.strerror}") from exc
    else:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(secrets.token_hex(32) + "\n")
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
    module's notes): read from :func:`key_file`, made on first need; read once per process."""
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
    """Whether each id (text) is itself personal data: an e-mail address or a phone number
    by the content check's patterns, of the value trimmed (null: False). Whole-column Arrow
    operations (RE2, as the engine's), the regular expressions only on the few values that
    hold ``@`` or start like a number."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from segflow.exports._pii_content import _NO_PHONE, _PHONE_DIGITS, EMAIL_PATTERN

    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not pa.types.is_string(values.type) and not pa.types.is_large_string(values.type):
        values = values.cast(pa.string())
    text = pc.utf8_trim_whitespace(values)
    email = pc.and_kleene(pc.match_substring(text, "@"), pc.match_substring_regex(text, EMAIL_PATTERN))
    phone = pc.and_kleene(pc.match_substring_regex(text, _PHONE_DIGITS),
                          pc.invert(pc.match_substring_regex(text, _NO_PHONE)))
    return pc.fill_null(pc.or_(email, phone), False)


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


def pseudonym_note(n: int, key_path: Path | None) -> str:
    """The one line a command prints on stderr when it wrote ``n`` ids as keys."""
    where = f" ({key_path})" if key_path is not None else ""
    return (f"note: {n:,} customer id(s) are e-mail addresses or phone numbers: written as "
            f"pseudonymous keys ({PSEUDONYM_PREFIX}...), the same for a customer in every output "
            f"of this project, made with its secret key{where}; --pii include writes the ids in clear")
