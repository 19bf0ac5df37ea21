"""segflow._lineage.columns_read: the columns of a source table an expression reads."""

from __future__ import annotations

import ibis
import pytest

from segflow._lineage import columns_read

T = ibis.table({"a": "int64", "b": "int64", "c": "int64", "d": "string", "e": "float64"},
               name="t")


@pytest.mark.parametrize(("build", "read"), [
    # a mutate carries every column: only those the result uses count
    (lambda t: t.mutate(x=t.a + 1).select("x"), {"a"}),
    # a filter's predicate decides the rows: read, though not kept
    (lambda t: t.mutate(x=t.a).filter(t.b > 0).select("x"), {"a", "b"}),
    # a window: its partition and order keys
    (lambda t: t.mutate(r=ibis.row_number().over(group_by="d", order_by="c")).select("r"),
     {"c", "d"}),
    # grouping keys always, metrics only when kept; count(*) reads rows, no column
    (lambda t: t.group_by("d").aggregate(n=t.count(), s=t.e.sum()).select("d", "n"), {"d"}),
    # a union of two filters of one table: both sides' predicates and the kept column
    (lambda t: ibis.union(t.filter(t.a > 0).select("c"), t.filter(t.b > 0).select("c")),
     {"a", "b", "c"}),
    # a join's predicates and the columns taken from either side
    (lambda t: t.join(t.select("d", q=t.b).filter(ibis._.q > 1), "d").select("a"),
     {"a", "b", "d"}),
    # a distinct union reads every column of both sides' rows
    (lambda t: ibis.union(t.select("a", "e"), t.select("a", "e"), distinct=True).select("a"),
     {"a", "e"}),
])
def test_columns_read_are_those_the_result_depends_on(build, read):
    assert columns_read(build(T), T) == read


def test_an_unknown_relation_reads_every_column_of_its_input():
    assert columns_read(T.distinct().select("a"), T) == set(T.columns)


def test_several_expressions_read_the_union_of_their_columns():
    one, two = T.mutate(x=T.a).select("x"), T.filter(T.e > 0).select("d")
    assert columns_read([one, two], T) == {"a", "d", "e"}
    assert columns_read([], T) == set()
