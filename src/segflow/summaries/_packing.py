"""Every scheme's segment code of a customer at a snapshot packed into a few int64 words.

The aggregates of :mod:`segflow.summaries._cells` need, per (customer, snapshot), the
segment of every scheme. One column per scheme is a pivot with one filtered aggregate per
scheme, and the transition cells then group the joined states once per scheme. Packed, the
pivot is one sum per word, and since customers fall into few combinations of segments (about
1,400 per snapshot across six schemes on the 1M demo store), the cells are one grouping by
the words into a small table of combinations, which each scheme then groups again by its
own field (exact: sums of exact decimal sums).

Scheme ``i`` holds its local code ``g - first + 1`` (``g``: the code of
:func:`segflow.summaries._cells.codes`, contiguous per scheme; 0: not assigned) in ``bits``
bits at ``shift`` of word ``p{word}``. A scheme's field never spans two words, and a word
holds at most :data:`WORD_BITS` bits, so that every word is below 2**53 and the engine's
floor division (a float division on some engines, exact below 2**53) decodes it exactly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import ibis
import ibis.expr.types as ir
import pandas as pd

#: Bits a word may hold (below 53: see the module's docstring).
WORD_BITS = 48


@dataclasses.dataclass(frozen=True)
class Field:
    """Where one scheme's code lives: word, shift and width (bits), and the code ``g`` of
    local code 1 (``first``)."""

    word: int
    shift: int
    bits: int
    first: int


@dataclasses.dataclass(frozen=True)
class Packing:
    """The fields of every scheme (in the order of the schemes) and the number of words."""

    fields: tuple[Field, ...]
    n_words: int

    @classmethod
    def of(cls, code_table: pd.DataFrame, schemes: Sequence[str], word_bits: int | None = None) -> Packing:
        """The packing of the codes of ``code_table`` (:func:`segflow.summaries._cells.codes`,
        executed: columns ``si, g``) for ``schemes``: fields filled into words of
        ``word_bits`` bits (default :data:`WORD_BITS`) in scheme order. Raises ValueError when
        one scheme has more codes than a word can hold."""
        word_bits = WORD_BITS if word_bits is None else word_bits
        fields, word, used = [], 0, 0
        for i in range(len(schemes)):
            g = code_table.loc[code_table["si"] == i, "g"]
            first, n = (int(g.min()), int(g.max()) - int(g.min()) + 1) if len(g) else (1, 0)
            bits = max(n.bit_length(), 1)  # local codes 1 .. n, and 0 for none
            if bits > word_bits:
                raise ValueError(f"scheme {schemes[i]!r} has {n:,} segment codes, more than "
                                 f"{word_bits} bits can number")
            if used + bits > word_bits:
                word, used = word + 1, 0
            fields.append(Field(word, used, bits, first))
            used += bits
        return cls(tuple(fields), word + 1 if fields else 0)

    @property
    def words(self) -> list[str]:
        """The words' column names: ``p0 .. p{n_words - 1}``."""
        return [f"p{w}" for w in range(self.n_words)]

    def pivot(self, rows: ir.Table, by: Sequence[str]) -> ir.Table:
        """``rows`` (``si, g`` and the columns ``by``; at most one row per ``by`` and scheme,
        as the store's assignments and spells hold: a second row would be added into the
        neighbouring field) grouped by ``by`` into the words (int64; null when no row of the
        word's schemes). A sum, not ``bit_or``: Spark has no ``bit_or`` through Ibis."""
        if not self.fields:
            return rows.select(*by).distinct()
        piece = ibis.cases(*[(rows.si == i, (rows.g - (f.first - 1)) * (1 << f.shift))
                             for i, f in enumerate(self.fields)])
        aggs = {}
        for w, name in enumerate(self.words):
            mine = [i for i, f in enumerate(self.fields) if f.word == w]
            where = None if self.n_words == 1 else rows.si.isin(mine)
            aggs[name] = piece.sum(where=where).cast("int64")
        return rows.group_by(*by).agg(**aggs)

    def code(self, table: ir.Table, i: int, prefix: str = "p") -> ir.IntegerValue:
        """The code ``g`` of scheme ``i`` in the words ``{prefix}0 ..`` of ``table``; null when
        not assigned."""
        f = self.fields[i]
        local = (table[f"{prefix}{f.word}"] % (1 << (f.shift + f.bits))) // (1 << f.shift)
        return ibis.ifelse(local == 0, ibis.null("int64"), local + (f.first - 1)).cast("int64")

    def decoded(self, table: ir.Table) -> ir.Table:
        """``table`` with the code of each scheme as ``g0 .. g{n-1}`` instead of the words."""
        return table.mutate(**{f"g{i}": self.code(table, i) for i in range(len(self.fields))}).drop(
            *self.words)
