"""Customer ids that are e-mails or phone numbers, in the server's answers.

Every answer that does not show personal data in clear (an analyst's default: masked JSON and
pages, hashed CSV downloads, the migration cells' customers, audiences) shows such an id as
the pseudonymous key the exports write (:mod:`segflow.exports._pseudonym`: the same key for
a customer in the server and in every export, made with the project's secret beside the
store, not the served copy); ``pii=include`` shows the id. A page links a customer by that
key, so ``/customers/pid-...`` (and ``/api/v1/customers/pid-...``) is resolved back to the
id through a table of the copy's personal ids and their keys (:func:`resolve`, the function
``segflow customers explain`` resolves a key with), made once per
copy on the first such request (about 1.5 s and 60 MB per million ids that are e-mails; a
copy whose ids are plain numbers makes an empty one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from segflow.exports._pseudonym import (
    PSEUDONYM_PREFIX,
    id_key,
    key_table,
    pseudonymise_values,
    resolve_key,
)

if TYPE_CHECKING:
    import pandas as pd

    from segflow.project import Project


def server_key(state: Any) -> bytes:
    """The project's secret for pseudonymous ids (``state``: the app's state, holding the
    replica, whose ``store_path`` is the project's store, not the served copy)."""
    return id_key(state.replica.store_path)


def audited_id(customer_id: str, key: bytes) -> str:
    """The id an audit event records for a customer asked for as ``customer_id``: an id
    that is an e-mail address or a phone number as its pseudonymous key, so the log holds
    no address, as it holds none searched (``q_hmac``); any other id, a key included, as
    asked. Before, ``/api/v1/customers/jane@example.com`` put the address in the log twice
    (path and details)."""
    if "@" not in customer_id and sum(c.isdigit() for c in customer_id) < 7:
        return customer_id  # no address and too few digits for a phone number: not personal
    return str(pseudonymise_values([customer_id], key)[0])


def pseudonymise_frame(frame: pd.DataFrame, key: bytes, columns: tuple[str, ...] = ("customer_id",)) -> pd.DataFrame:
    """A copy of ``frame`` with the personal ids of ``columns`` as their keys (the others
    as they are); ``frame`` itself when it has none of them."""
    import pandas as pd

    present = [c for c in columns if c in frame.columns]
    if not present or frame.empty:
        return frame
    out = frame.copy()
    for c in present:
        out[c] = pd.Series(pseudonymise_values(out[c].tolist(), key), index=out.index, dtype=object)
    return out


def pseudonymise_rows(columns: list[str], rows: list[tuple[Any, ...]], key: bytes) -> list[tuple[Any, ...]]:
    """``rows`` with the personal ids of their ``customer_id`` column as their keys."""
    if "customer_id" not in columns or not rows:
        return rows
    j = columns.index("customer_id")
    keys = pseudonymise_values([r[j] for r in rows], key)
    return [(*r[:j], k, *r[j + 1:]) for r, k in zip(rows, keys, strict=True)]


def resolve(project: Project, gen: Any, key: bytes, customer_id: str) -> str:
    """The id whose pseudonymous key is ``customer_id``, or ``customer_id`` itself (not a
    key, or no id of the copy has it): :func:`segflow.exports._pseudonym.resolve_key`, its
    table of keys made once per copy (``gen``) and secret (a new key file makes a new one)."""
    if not customer_id.startswith(PSEUDONYM_PREFIX):
        return customer_id
    con = project.store.raw
    table = key_table(con, key) if gen is None else gen.cached(("pseudonyms", key), lambda: key_table(con, key))
    return resolve_key(table, customer_id)
