"""Identity resolution: link customer ids that belong to one person, explainably and reversibly.

Two ids are linked when their customer records share a normalised email or phone number, or
when an explicit id map pairs them. Linked ids form groups (connected components); each group
is represented by its smallest id, the *master id*. Canonical rows are never rewritten: the
links live in ``identity_links`` (customer_id -> master_id) and the evidence in
``identity_edges``, so every merge can be explained and undone (``unlink``).

Normalisation: email = lower-cased and trimmed, kept only if it contains '@'; phone = digits
only, compared on the last 9 digits (so '+44 20 7946 0002' and '020 7946 0002' match), kept
only with at least 9 digits. Generic shared values (one email or phone on more than
``max_group`` records) are ignored as evidence: they are usually placeholders.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import pandas as pd

from segflow._result import TableResult
from segflow.errors import InputError
from segflow.sources._ids import id_value
from segflow.sources._readers import lit
from segflow.store import Store

DDL = [
    """CREATE TABLE IF NOT EXISTS identity_edges (
      customer_id VARCHAR, other_id VARCHAR, rule VARCHAR, evidence VARCHAR, run_id VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS identity_links (
      customer_id VARCHAR, master_id VARCHAR, run_id VARCHAR, created_at TIMESTAMP)""",
    "CREATE TABLE IF NOT EXISTS identity_blocks (customer_id VARCHAR, created_at TIMESTAMP)",
]
VIEW = """CREATE OR REPLACE VIEW customer_identity AS
SELECT c.customer_id, coalesce(l.master_id, c.customer_id) AS master_id
FROM (SELECT DISTINCT customer_id FROM customers WHERE customer_id IS NOT NULL) c
LEFT JOIN identity_links l ON l.customer_id = c.customer_id"""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class IdentityReport(TableResult):
    """Result of :func:`resolve_identities`: the links (customer_id -> master_id)."""

    def __init__(self, links: pd.DataFrame, by_rule: dict[str, int], run_id: str) -> None:
        self.links, self.by_rule, self.run_id = links, by_rule, run_id

    @property
    def linked(self) -> int:
        """Number of ids merged into another (master) id."""
        return len(self.links)

    @property
    def groups(self) -> int:
        return int(self.links.master_id.nunique()) if len(self.links) else 0

    @property
    def edges(self) -> int:
        return sum(self.by_rule.values())

    def to_pandas(self) -> pd.DataFrame:
        return self.links

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.update(linked=self.linked, groups=self.groups, by_rule=self.by_rule, run_id=self.run_id)
        return out

    def figure(self):
        import plotly.graph_objects as go

        return go.Figure(go.Bar(x=list(self.by_rule), y=list(self.by_rule.values())))

    def __repr__(self) -> str:
        return f"IdentityReport(linked={self.linked}, groups={self.groups}, edges={self.by_rule})"


#: Policies of :func:`explain` for the personal values it shows (the records' e-mail and
#: phone, the evidence of each link): masked (the default) or, asked explicitly, in clear.
EXPLAIN_PII: tuple[str, ...] = ("mask", "include")


class IdentityExplanation:
    """Why a customer id is (or is not) merged with others."""

    def __init__(self, customer_id: str, master_id: str, members: list[str],
                 edges: pd.DataFrame, blocked: bool, records: pd.DataFrame) -> None:
        self.customer_id, self.master_id, self.members = customer_id, master_id, members
        self.edges, self.blocked, self.records = edges, blocked, records

    def to_dict(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id, "master_id": self.master_id,
            "members": self.members, "blocked": self.blocked,
            "edges": self.edges.to_dict(orient="records"),
            "records": self.records.astype(str).to_dict(orient="records"),
        }

    def text(self) -> str:
        lines = [f"customer {self.customer_id}: master id {self.master_id}; "
                 f"group of {len(self.members)}: {', '.join(self.members)}"]
        if self.blocked:
            lines.append("  unlinked by hand: never merged")
        for e in self.edges.itertuples():
            lines.append(f"  {e.customer_id} ~ {e.other_id}: same {e.rule} ({e.evidence})")
        for r in self.records.itertuples():
            lines.append(f"  record {r.customer_id} from {r.source} ({r.source_file} row {r.source_row})")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"IdentityExplanation({self.customer_id!r} -> {self.master_id!r}, {len(self.members)} ids)"

    #: customer ids shown as pseudonymous keys (:meth:`masked`)
    ids_pseudonymised = 0

    def masked(self, key: bytes | None = None) -> IdentityExplanation:
        """This explanation with its personal values masked by the exports' mask rules
        (:func:`segflow.exports.mask_values`): every personal column of the records
        (:func:`segflow.exports.is_personal`: ``email``, ``phone``...) by its kind's rule, and
        the evidence of an ``email`` or ``phone`` link by that rule (``a***@example.com``,
        ``***02``; a phone's evidence is its last 9 digits); an id map's evidence is no
        personal value. With ``key`` (the project's secret,
        :func:`segflow.exports._pseudonym.id_key`), every id that is itself an e-mail
        address or phone number (the customer's, the master's, the members', those of the
        links and records) is shown as its pseudonymous key, as the exports write it."""
        from segflow.exports._pii import mask_frame, mask_values
        from segflow.exports._pseudonym import personal_ids, pseudonymise_values

        records = mask_frame(self.records)
        edges = self.edges.copy()
        if len(edges):
            edges["evidence"] = edges["evidence"].astype(object)
            for rule in ("email", "phone"):
                at = edges["rule"] == rule
                if at.any():
                    edges.loc[at, "evidence"] = mask_values(rule, edges.loc[at, "evidence"].tolist())
        if key is None:
            return IdentityExplanation(self.customer_id, self.master_id, self.members, edges, self.blocked, records)
        import pyarrow as pa

        ids = [self.customer_id, self.master_id, *self.members]
        mapping = dict(zip(ids, pseudonymise_values(ids, key), strict=True))
        for frame, cols in ((edges, ("customer_id", "other_id")), (records, ("customer_id",))):
            for c in cols:
                if c in frame.columns and len(frame):
                    frame[c] = pseudonymise_values(frame[c].tolist(), key)
        out = IdentityExplanation(mapping[self.customer_id], mapping[self.master_id],
                                  [mapping[m] for m in self.members], edges, self.blocked, records)
        out.ids_pseudonymised = int(sum(personal_ids(pa.array(list(set(ids)), pa.string())).to_pylist()))
        return out


def _edges_sql(max_group: int) -> str:
    email = "lower(trim(email))"
    digits = "regexp_replace(coalesce(phone, ''), '[^0-9]', '', 'g')"
    keys = f"""SELECT customer_id, 'email' AS rule, {email} AS k FROM customers
               WHERE customer_id IS NOT NULL AND contains({email}, '@')
               UNION ALL
               SELECT customer_id, 'phone', right({digits}, 9) FROM customers
               WHERE customer_id IS NOT NULL AND length({digits}) >= 9"""
    return f"""WITH k AS (SELECT DISTINCT customer_id, rule, k FROM ({keys})
                          WHERE customer_id NOT IN (SELECT customer_id FROM identity_blocks)),
           g AS (SELECT rule, k, min(customer_id) AS first_id, count(*) AS n FROM k
                 GROUP BY rule, k HAVING count(*) BETWEEN 2 AND {int(max_group)})
      SELECT k.customer_id, g.first_id AS other_id, k.rule, k.k AS evidence
      FROM k JOIN g USING (rule, k) WHERE k.customer_id <> g.first_id"""


def resolve_identities(
    store: Store, *, id_map: str | Path | pd.DataFrame | None = None, max_group: int = 20,
) -> IdentityReport:
    """Link customer ids across sources by normalised email and phone, and an optional id map.

    Parameters
    ----------
    store : Store
        Store whose ``customers`` table is resolved.
    id_map : path or DataFrame, optional
        Explicit links: two columns ``customer_id, other_id`` (CSV file or DataFrame).
    max_group : int, default 20
        An email or phone shared by more records than this is ignored as evidence.

    Returns
    -------
    IdentityReport
        ``to_pandas()``: one row per merged id (customer_id, master_id).

    Notes
    -----
    Replaces the previous links. Ids unlinked with :func:`unlink` are never merged again.
    Groups are the connected components of the evidence graph; the master id is the
    smallest id of the group (deterministic).
    """
    run_id = uuid.uuid4().hex[:12]
    with store.transaction() as con:
        for ddl in DDL:
            con.execute(ddl)
        con.execute("DELETE FROM identity_edges")
        con.execute(f"INSERT INTO identity_edges SELECT *, {lit(run_id)} FROM ({_edges_sql(max_group)})")
        if id_map is not None:
            frame = _read_id_map(id_map)
            con.register("_sf_idmap", frame)
            ids = (f"SELECT {id_value('customer_id', 'VARCHAR')} AS customer_id, "
                   f"{id_value('other_id', 'VARCHAR')} AS other_id FROM _sf_idmap")
            con.execute(f"""INSERT INTO identity_edges SELECT customer_id, other_id, 'id_map',
                'explicit id map', {lit(run_id)} FROM ({ids})
                WHERE customer_id <> other_id
                  AND customer_id NOT IN (SELECT customer_id FROM identity_blocks)
                  AND other_id NOT IN (SELECT customer_id FROM identity_blocks)""")
            con.unregister("_sf_idmap")
        _components(con, run_id)
        con.execute(VIEW)
    links = store.sql("SELECT customer_id, master_id FROM identity_links ORDER BY 2, 1").to_pandas()
    by_rule = dict(store.sql("SELECT rule, count(*) FROM identity_edges GROUP BY 1 ORDER BY 1")
                   .to_pandas().itertuples(index=False, name=None))
    return IdentityReport(links, by_rule, run_id)


def _read_id_map(id_map: str | Path | pd.DataFrame) -> pd.DataFrame:
    if isinstance(id_map, pd.DataFrame):
        frame = id_map
    else:
        path = Path(id_map)
        if not path.exists():
            raise InputError("id map file not found", file=str(path))
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = {"customer_id", "other_id"} - set(frame.columns)
    if missing:
        raise InputError(f"id map needs columns customer_id and other_id; missing {sorted(missing)}",
                         file=None if isinstance(id_map, pd.DataFrame) else str(id_map), row=0)
    # ids are made canonical in SQL, as at ingest (trimmed, invisible characters removed);
    # an empty one gives no link
    return frame[["customer_id", "other_id"]].astype(str)


def _components(con, run_id: str) -> None:
    """Connected components by min-label propagation (iterations, not rows, in Python)."""
    con.execute("""CREATE OR REPLACE TEMP TABLE _sf_lab AS
        SELECT id, id AS lab FROM (SELECT customer_id AS id FROM identity_edges
                                   UNION SELECT other_id FROM identity_edges)""")
    con.execute("""CREATE OR REPLACE TEMP TABLE _sf_und AS
        SELECT customer_id AS a, other_id AS b FROM identity_edges
        UNION SELECT other_id, customer_id FROM identity_edges""")
    while True:
        con.execute("""CREATE OR REPLACE TEMP TABLE _sf_new AS
            SELECT l.id, least(l.lab, coalesce(min(n.lab), l.lab)) AS lab
            FROM _sf_lab l LEFT JOIN _sf_und e ON e.a = l.id LEFT JOIN _sf_lab n ON n.id = e.b
            GROUP BY l.id, l.lab""")
        changed = con.execute("""SELECT count(*) FROM _sf_new n JOIN _sf_lab l USING (id)
                                 WHERE n.lab <> l.lab""").fetchone()[0]
        con.execute("CREATE OR REPLACE TEMP TABLE _sf_lab AS SELECT * FROM _sf_new")
        if not changed:
            break
    con.execute("DELETE FROM identity_links")
    con.execute("INSERT INTO identity_links SELECT id, lab, ?, ? FROM _sf_lab WHERE id <> lab",
                [run_id, _now()])
    for t in ("_sf_lab", "_sf_und", "_sf_new"):
        con.execute(f"DROP TABLE IF EXISTS {t}")


def _ensure(store: Store) -> None:
    with store.transaction() as con:
        for ddl in DDL:
            con.execute(ddl)
        con.execute(VIEW)


def _resolved(store: Store) -> bool:
    """True once identity tables exist (read-only stores are never written to here)."""
    return {"identity_links", "identity_edges", "identity_blocks"} <= set(store.tables())


def explain(store: Store, customer_id: str, *, pii: str = "mask") -> IdentityExplanation:
    """Explain the identity of ``customer_id``: its master id, group, evidence and records.

    Works on a read-only store; before any resolve every id stands alone. ``pii``
    (:data:`EXPLAIN_PII`): the personal values shown (the records' e-mail and phone, the
    evidence of each link) are masked by default (:meth:`IdentityExplanation.masked`), in
    clear with ``"include"``; any other value is an :class:`InputError`.
    """
    if pii not in EXPLAIN_PII:
        raise InputError(f"unknown personal-data policy {pii!r} for explain; expected one of "
                         f"{', '.join(EXPLAIN_PII)}")
    from segflow.exports._pseudonym import PSEUDONYM_PREFIX, id_key, key_table, resolve_key

    if customer_id.startswith(PSEUDONYM_PREFIX):  # a key (pid-...) finds its customer, as the server's pages
        customer_id = resolve_key(key_table(store.raw, id_key(store.path)), customer_id)
    explained = _explain(store, customer_id)
    if pii == "include":
        return explained
    return explained.masked(id_key(store.path))


def _explain(store: Store, customer_id: str) -> IdentityExplanation:
    """:func:`explain`, the values in clear."""
    if not _resolved(store):
        known = store.sql("SELECT count(*) FROM customers WHERE customer_id = ?",
                          [customer_id]).column(0)[0].as_py()
        if not known:
            raise InputError(f"customer id {customer_id!r} is not in the customers table")
        records = store.sql("""SELECT customer_id, source, source_file, source_row, email, phone
            FROM customers WHERE customer_id = ? ORDER BY 1, 2""", [customer_id]).to_pandas()
        empty = pd.DataFrame(columns=["customer_id", "other_id", "rule", "evidence"])
        return IdentityExplanation(customer_id, customer_id, [customer_id], empty, False, records)
    row = store.sql("SELECT master_id FROM identity_links WHERE customer_id = ?", [customer_id])
    master = row.column(0)[0].as_py() if row.num_rows else customer_id
    members = store.sql(
        "SELECT customer_id FROM identity_links WHERE master_id = ? UNION SELECT ? ORDER BY 1",
        [master, master]).column(0).to_pylist()
    known = store.sql("SELECT count(*) FROM customers WHERE customer_id = ?", [customer_id]).column(0)[0].as_py()
    if not known and not row.num_rows:
        raise InputError(f"customer id {customer_id!r} is not in the customers table")
    marks = ", ".join(lit(m) for m in members)
    edges = store.sql(f"""SELECT customer_id, other_id, rule, evidence FROM identity_edges
        WHERE customer_id IN ({marks}) OR other_id IN ({marks}) ORDER BY 1, 2, 3""").to_pandas()
    blocked = bool(store.sql("SELECT count(*) FROM identity_blocks WHERE customer_id = ?",
                             [customer_id]).column(0)[0].as_py())
    records = store.sql(f"""SELECT customer_id, source, source_file, source_row, email, phone
        FROM customers WHERE customer_id IN ({marks}) ORDER BY 1, 2""").to_pandas()
    return IdentityExplanation(customer_id, master, members, edges, blocked, records)


def unlink(store: Store, customer_id: str) -> int:
    """Separate ``customer_id`` from its group, now and in later resolves.

    Returns the number of evidence edges removed. The rest of the group is re-grouped from
    its remaining evidence. A pseudonymous key (``pid-...``, as ``explain`` and the masked
    outputs show an id that is an e-mail or phone number) finds its customer, as in
    :func:`explain`.
    """
    from segflow.exports._pseudonym import PSEUDONYM_PREFIX, id_key, key_table, resolve_key

    if customer_id.startswith(PSEUDONYM_PREFIX):
        customer_id = resolve_key(key_table(store.raw, id_key(store.path)), customer_id)
    _ensure(store)
    with store.transaction() as con:
        con.execute("INSERT INTO identity_blocks VALUES (?, ?)", [customer_id, _now()])
        removed = con.execute(
            "SELECT count(*) FROM identity_edges WHERE customer_id = ? OR other_id = ?",
            [customer_id, customer_id]).fetchone()[0]
        con.execute("DELETE FROM identity_edges WHERE customer_id = ? OR other_id = ?",
                    [customer_id, customer_id])
        _components(con, "unlink")
    return int(removed)


def identity_map(store: Store):
    """Ibis table ``customer_identity(customer_id, master_id)`` for joins (every customer id).

    Before any resolve (or on a read-only store without identity tables) each id is its own
    master.
    """
    if "customer_identity" not in store.tables():
        cu = store.table("customers")
        return (cu.filter(cu.customer_id.notnull())
                .select(customer_id=cu.customer_id, master_id=cu.customer_id).distinct())
    return store.table("customer_identity")
