"""Every scheme's segment code packed into int64 words (segflow.summaries._packing) and read
back: the codes of random rows come back as they went in, in one word or in many, and a
scheme too large for a word is refused."""

from __future__ import annotations

import ibis
import numpy as np
import pandas as pd
import pytest

from segflow.summaries._packing import Packing

CODES = [3, 1, 0, 200, 7, 1000, 2]  # codes per scheme (0: a scheme nobody is in)


def _code_table() -> pd.DataFrame:
    rows, g = [], 1
    for si, n in enumerate(CODES):
        rows += [(si, g + j) for j in range(n)]
        g += n
    return pd.DataFrame(rows, columns=["si", "g"])


@pytest.mark.parametrize("word_bits", [48, 12, 10])
def test_codes_come_back_from_the_words(word_bits):
    table = _code_table()
    packing = Packing.of(table, [f"s{i}" for i in range(len(CODES))], word_bits=word_bits)
    assert all(f.shift + f.bits <= word_bits for f in packing.fields)
    assert packing.n_words == {48: 1, 12: 3, 10: 5}[word_bits]
    rng = np.random.default_rng(7)
    rows = []  # (k, d, si, g): at most one per (k, d, si); some schemes missing
    for k in range(300):
        for d in range(3):
            for si, n in enumerate(CODES):
                if n and rng.random() < 0.6:
                    first = int(table.loc[table.si == si, "g"].min())
                    rows.append((k, d, si, first + int(rng.integers(n))))
    frame = pd.DataFrame(rows, columns=["k", "d", "si", "g"])
    con = ibis.duckdb.connect()
    t = con.create_table("rows", frame)
    got = packing.decoded(packing.pivot(t, ["k", "d"])).to_pandas().set_index(["k", "d"]).sort_index()
    want = frame.pivot_table(index=["k", "d"], columns="si", values="g", aggfunc="first").sort_index()
    assert len(got) == len(want) > 850  # a (k, d) with no scheme at all has no row
    for si in range(len(CODES)):
        w = want[si] if si in want.columns else pd.Series(np.nan, index=want.index)
        assert got[f"g{si}"].astype("Float64").tolist() == w.astype("Float64").tolist(), si


def test_a_scheme_too_large_for_a_word_is_refused():
    with pytest.raises(ValueError, match="scheme 's5' has 1,000 segment codes"):
        Packing.of(_code_table(), [f"s{i}" for i in range(len(CODES))], word_bits=9)


def test_no_scheme_no_word():
    packing = Packing.of(_code_table().iloc[:0], [])
    assert packing.n_words == 0 and packing.words == []
    con = ibis.duckdb.connect()
    t = con.create_table("rows", pd.DataFrame({"k": [1, 1, 2], "d": [0, 0, 1], "si": [0, 0, 0],
                                               "g": [1, 1, 1]}))
    assert len(packing.pivot(t, ["k", "d"]).to_pandas()) == 2
