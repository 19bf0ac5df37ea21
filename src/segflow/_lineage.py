"""Which columns of a source table an Ibis expression reads (column lineage).

:func:`columns_read` walks an expression's relations from the result down to the source
and keeps, for every relation, the columns something above it reads: the result's own
columns, the expressions that compute them, and whatever decides which rows there are
(filter predicates, join predicates, grouping keys, sort keys). A column the expression
carries along but never uses (a ``mutate`` copies every column of its parent) is not read.
Relations it does not know (a distinct union, ``distinct``, unnests...) read every column of
their inputs: the answer can be too wide, never too narrow.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import ibis
import ibis.expr.operations as ops
from ibis.common.graph import Node, bfs


def columns_read(tables: ibis.Table | Sequence[ibis.Table], source: ibis.Table) -> set[str]:
    """The columns of ``source`` that ``tables`` (expressions built on it: one, or several
    walked together, their shared parts once) read."""
    roots = [t.op() for t in ([tables] if isinstance(tables, ibis.Table) else tables)]
    src = source.op()
    needed: dict[Node, set[str]] = {root: set(root.schema.names) for root in roots}
    # parents before children: a relation's reads are complete before it is visited
    ordered, _ = bfs(roots).toposort()  # (dependencies first, dependents)
    for node in reversed(list(ordered)):
        if isinstance(node, ops.Relation) and node in needed and node is not src:
            _visit(node, needed[node], needed)
    return needed.get(src, set())


def _need(needed: dict[Node, set[str]], rel: Node, names: Iterable[str]) -> None:
    needed.setdefault(rel, set()).update(names)


def _values(needed: dict[Node, set[str]], values: Iterable[Node]) -> None:
    """Record the columns the value expressions ``values`` read (and the relations they
    read whole: subqueries; a ``count(*)`` reads its relation's rows alone)."""
    stack, seen = list(values), set()
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        if isinstance(node, ops.Field):
            _need(needed, node.rel, [node.name])
        elif isinstance(node, ops.Relation):
            _need(needed, node, node.schema.names)
        elif isinstance(node, ops.CountStar | ops.CountDistinctStar):
            _need(needed, node.arg, ())
            stack.extend(c for c in node.__children__ if c is not node.arg)
        else:
            stack.extend(node.__children__)


def _visit(rel: ops.Relation, names: set[str], needed: dict[Node, set[str]]) -> None:
    """Pass the reads ``names`` of ``rel`` on to the relations it is built on."""
    if isinstance(rel, ops.Project):
        _need(needed, rel.parent, ())
        _values(needed, [rel.values[n] for n in names])
    elif isinstance(rel, ops.Filter | ops.Sort | ops.Limit | ops.DropColumns | ops.FillNull):
        _need(needed, rel.parent, names)
        rest = [a for k, a in zip(rel.argnames, rel.args, strict=True) if k != "parent"]
        _values(needed, _nodes(rest))
    elif isinstance(rel, ops.Aggregate):
        _need(needed, rel.parent, ())
        _values(needed, [*rel.groups.values(), *(rel.metrics[n] for n in names
                                                  if n in rel.metrics)])
    elif isinstance(rel, ops.JoinChain):
        _need(needed, rel.first, ())
        for link in rel.rest:
            _need(needed, link.table, ())
            _values(needed, link.predicates)
        _values(needed, [rel.values[n] for n in names])
    elif isinstance(rel, ops.Union) and not rel.distinct:  # the rows of both, by name
        _need(needed, rel.left, names)
        _need(needed, rel.right, names)
    elif isinstance(rel, ops.Reference):  # a join's or self-join's alias of its parent
        _need(needed, rel.parent, names)
    else:  # anything else reads every column of what it is built on
        _values(needed, _nodes(rel.args))


def _nodes(args: Iterable[object]) -> list[Node]:
    """The nodes among ``args`` (and inside tuples and mappings of them)."""
    out: list[Node] = []
    for arg in args:
        if isinstance(arg, Node):
            out.append(arg)
        elif isinstance(arg, tuple | list):
            out += _nodes(arg)
        elif isinstance(arg, dict):
            out += _nodes(arg.values())
    return out
