"""Small cells: a viewer (no customer-level access) read the exact revenue, CLV and profile
means of segments and migration cells of one or two customers, and the purchase rate of a
campaign's control arm of two in a segment, which are those customers' own figures. Below
``[server] min_cell_customers`` they are null for a viewer, with the reason in ``withheld``
(and, while the withheld rows hold fewer customers together, the next smallest with them,
else the total less the others gives them away; for a campaign, arm by arm); counts stay;
analysts see every figure. Checked on a copy of the
served fixture whose threshold is set between its segments' sizes, so that some rows are
small and some are not, with a campaign added whose control arm in one segment is small."""

from __future__ import annotations

import shutil

import duckdb
import httpx
import pandas as pd
import pytest
from tests.server.conftest import _client

from segflow._disclosure import arm_reason, complement_reason, reason

#: The campaign added to the fixture: every lifecycle customer of the snapshot before it,
#: exposed at one time; in ``SMALL_SEGMENT`` only ``SMALL_CONTROL`` of them are control.
CAMPAIGN, EXPOSED_AT, BEFORE = "spring", "2024-03-05 09:00:00", "2024-03-01"
SMALL_SEGMENT, SMALL_CONTROL = "loyalists", 2


def _add_campaign(con: duckdb.DuckDBPyConnection) -> None:
    """Exposures of :data:`CAMPAIGN`: in each lifecycle segment at :data:`BEFORE`, customers
    alternately treatment and control (by id), but only the first :data:`SMALL_CONTROL` of
    :data:`SMALL_SEGMENT` control."""
    rows = con.execute("SELECT customer_id, segment FROM segment_assignments WHERE scheme = 'lifecycle' "
                       "AND snapshot_date = ? ORDER BY segment, customer_id", [BEFORE]).fetchall()
    seen: dict[str, int] = {}
    for customer_id, segment in rows:
        k = seen[segment] = seen.get(segment, -1) + 1
        control = k < SMALL_CONTROL if segment == SMALL_SEGMENT else k % 2 == 1
        con.execute("INSERT INTO campaign_exposures (campaign_id, customer_id, ts, arm, exposure_type) "
                    "VALUES (?, ?, ?::TIMESTAMP, ?, 'email')",
                    [CAMPAIGN, customer_id, EXPOSED_AT, "control" if control else "treatment"])


@pytest.fixture(scope="module")
def small(_served_template, tmp_path_factory):
    """(project folder, threshold): the served fixture with ``min_cell_customers`` above the
    smallest rfm segment of the last snapshot and at or below the largest, and the campaign
    of :func:`_add_campaign`."""
    directory = tmp_path_factory.mktemp("small_cells") / "proj"
    shutil.copytree(_served_template, directory)
    con = duckdb.connect(str(directory / "segflow.duckdb"))
    sizes = sorted(n for (n,) in con.execute(
        "SELECT count(*) FROM segment_assignments WHERE scheme = 'rfm' AND snapshot_date = "
        "(SELECT max(snapshot_date) FROM segment_assignments WHERE scheme = 'rfm') GROUP BY segment").fetchall())
    _add_campaign(con)
    con.execute("CHECKPOINT")
    con.close()
    threshold = sizes[len(sizes) // 2]  # the median size: smaller segments are withheld
    assert sizes[0] < threshold <= sizes[-1]
    assert SMALL_CONTROL < threshold <= 5  # the campaign's small arm is small, its others (5, 6) not
    with open(directory / "segflow.toml", "a", encoding="utf-8") as fh:
        fh.write(f"\n[server]\nmin_cell_customers = {threshold}\n")
    return directory, threshold


@pytest.fixture(scope="module")
def clients(small):
    from segflow.server import ServerSettings, create_app

    directory, _ = small
    tokens = dict(line.split(" ", 1) for line in (directory / "tokens.txt").read_text().splitlines())
    app = create_app(ServerSettings(project_dir=directory, allowed_hosts=["testserver"], poll_seconds=0))
    with _client(app, tokens["viewer"]) as viewer, _client(app, tokens["analyst"]) as analyst:
        yield viewer, analyst


def _pair(clients, url: str):
    viewer, analyst = clients
    seen, full = viewer.get(url), analyst.get(url)
    assert seen.status_code == 200 and full.status_code == 200, (seen.text, full.text)
    return seen.json(), full.json()


def _check(seen: dict, full: dict, threshold: int, count: str, values: list[str]) -> int:
    """Each viewer row against the analyst's: small ones' ``values`` null with the reason,
    the others' as the analyst's; counts equal; the analyst has no ``withheld``. The number
    of small rows."""
    assert seen["count"] == full["count"] > 0
    small = 0
    for mine, theirs in zip(seen["data"], full["data"], strict=True):
        assert "withheld" not in theirs and mine[count] == theirs[count]
        hidden = 0 < theirs[count] < threshold
        small += hidden
        assert mine["withheld"] == (reason(threshold) if hidden else None), mine
        for column in values:
            assert mine[column] == (None if hidden else theirs[column]), (column, mine, theirs)
    return small


def test_viewers_get_no_value_figures_of_small_segments(clients, small):
    _, threshold = small
    seen, full = _pair(clients, "/api/v1/segments/rfm")
    small_rows = _check(seen, full, threshold, "customers", ["revenue_12m", "revenue_share"])
    assert 0 < small_rows < full["count"]
    assert all(r["revenue_12m"] is not None for r in full["data"])
    seen, full = _pair(clients, "/api/v1/profiles/rfm")
    means = [c for c in full["data"][0] if c.startswith(("mean__", "median__"))]
    assert means and 0 < _check(seen, full, threshold, "size", [*means, "value", "revenue_share"]) < full["count"]
    assert all(r["mean__monetary"] is not None for r in full["data"] if "mean__monetary" in r)


def test_viewers_get_no_value_figures_of_small_migration_cells(clients, small):
    _, threshold = small
    seen, full = _pair(clients, "/api/v1/migration/rfm")
    values = [c for c in ("revenue", "value") if c in full["data"][0]]
    assert "revenue" in values
    assert _check(seen, full, threshold, "customers", values) > 0
    seen, full = _pair(clients, "/api/v1/migration/rfm/value")
    assert _check(seen, full, threshold, "customers", ["clv_moved", "mean_clv"]) > 0


def test_the_pages_withhold_as_their_json(clients, small):
    """The segments and migration pages show the viewer the reason where the figures were;
    the analyst's pages have none."""
    _, threshold = small
    viewer, analyst = clients
    for url in ("/segments/rfm", "/migration/rfm"):
        seen, full = viewer.get(url), analyst.get(url)
        assert seen.status_code == 200 and full.status_code == 200
        assert reason(threshold) in seen.text and reason(threshold) not in full.text


# -- through a server on 127.0.0.1: the campaign read-out, profiles' texts, complementary rows

@pytest.fixture(scope="module")
def live(small):
    """(GET as a viewer, GET as an analyst) against the project served on 127.0.0.1."""
    # here, not at the top: that module skips itself without uvicorn or httptools, which
    # would skip the tests above too
    from tests.server.test_server_protocol import _serving

    from segflow.server import ServerSettings, create_app

    directory, _ = small
    tokens = dict(line.split(" ", 1) for line in (directory / "tokens.txt").read_text().splitlines())
    app = create_app(ServerSettings(project_dir=directory, poll_seconds=0, warm=False))
    with _serving(app, lifespan="on") as port:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, headers={"authorization": f"Bearer {tokens['viewer']}"}, timeout=60) as v, \
                httpx.Client(base_url=base, headers={"authorization": f"Bearer {tokens['analyst']}"}, timeout=60) as a:
            yield v, a


def _rows(live, url: str) -> tuple[list[dict], list[dict]]:
    seen, full = (c.get(url) for c in live)
    assert seen.status_code == 200 and full.status_code == 200, (seen.text[:300], full.text[:300])
    return seen.json()["data"], full.json()["data"]


def _purchase_rate(directory, arm: str) -> tuple[int, float]:
    """The campaign's customers in ``arm`` and the share of them with a purchase line (not a
    return, amount >= 0) in the 30 days from their exposure, counted here in SQL."""
    con = duckdb.connect(str(directory / "segflow.duckdb"), read_only=True)
    try:
        return con.execute(
            "SELECT count(*), avg(CAST((SELECT count(*) FROM transactions t WHERE t.customer_id = e.customer_id "
            "AND t.ts >= e.ts AND t.ts < e.ts + INTERVAL 30 DAY AND NOT coalesce(t.is_return, false) "
            "AND t.amount >= 0) > 0 AS INTEGER)) FROM campaign_exposures e WHERE campaign_id = ? AND arm = ?",
            [CAMPAIGN, arm]).fetchone()
    finally:
        con.close()


def test_campaign_lift_withholds_segments_with_a_small_arm_and_their_complement(live, small):
    """Every row of the segment whose control arm has 2 customers (the treated rows too: their
    lift less their rate is the control's rate) is withheld for a viewer, and so is the
    smallest other segment (else the campaign's totals less the visible segments give the
    small one away); the other segments and the totals are the analyst's, exactly; counts
    stay everywhere. The totals are also checked against the purchase rate counted here."""
    directory, threshold = small
    seen, full = _rows(live, f"/api/v1/campaigns/{CAMPAIGN}?scheme=lifecycle")
    assert len(seen) == len(full) == 20  # (all) and 4 segments x 2 outcomes x 2 arms
    customers = {}
    for r in full:
        if r["by"] == "segment" and r["outcome"] == "purchased":
            customers[r["segment"]] = customers.get(r["segment"], 0) + r["n"]
    control = {r["segment"]: r["n"] for r in full if r["arm"] == "control" and r["outcome"] == "purchased"}
    assert control[SMALL_SEGMENT] == SMALL_CONTROL and min(v for k, v in control.items() if k != SMALL_SEGMENT) >= threshold
    complement = min((s for s in customers if s != SMALL_SEGMENT), key=lambda s: (customers[s], s))
    values = ["value", "value_low", "value_high", "value_control", "lift_abs", "lift_abs_low", "lift_abs_high",
              "lift_rel", "lift_rel_low", "lift_rel_high", "test", "p_value", "p_adjusted", "significant", "mde_abs"]
    for mine, theirs in zip(seen, full, strict=True):
        assert "withheld" not in theirs
        for column in ("by", "segment", "outcome", "arm", "n", "n_missing", "n_control", "balance_p", "note"):
            assert mine[column] == theirs[column], (column, mine)
        why = {SMALL_SEGMENT: arm_reason(threshold), complement: complement_reason(threshold)}.get(mine["segment"])
        assert mine["withheld"] == why, mine
        for column in values:
            if column in ("p_adjusted", "significant") and mine["by"] == "segment":
                continue  # adjusted among the shown segments: below
            assert mine[column] == (None if why else theirs[column]), (column, mine, theirs)
    assert all(r["value"] is not None for r in full)
    for outcome in ("purchased", "revenue"):  # Holm over the shown segments' tests, by hand
        tests = [r for r in seen if r["by"] == "segment" and r["outcome"] == outcome and r["p_value"] is not None]
        assert len(tests) == 2  # two shown segments with a treated arm
        assert [r["p_adjusted"] for r in tests] == pytest.approx(_holm([r["p_value"] for r in tests]))
        assert [r["significant"] for r in tests] == [r["p_adjusted"] < 0.05 for r in tests]
    for arm in ("treatment", "control"):
        n, rate = _purchase_rate(directory, arm)
        total = next(r for r in seen if r["by"] == "(all)" and r["arm"] == arm and r["outcome"] == "purchased")
        assert (total["n"], total["value"]) == (n, pytest.approx(rate, abs=1e-12))


def test_campaign_page_marks_the_withheld_segments_in_the_forest_plots(live, small):
    _, threshold = small
    viewer, analyst = live
    seen, full = viewer.get(f"/campaigns/{CAMPAIGN}"), analyst.get(f"/campaigns/{CAMPAIGN}")
    assert seen.status_code == 200 and full.status_code == 200
    assert f"{SMALL_SEGMENT} (withheld)" in seen.text and arm_reason(threshold) in seen.text
    assert "(withheld)" not in full.text and arm_reason(threshold) not in full.text


def test_a_lone_small_segment_takes_the_next_smallest_with_it(live, small):
    """Lifecycle at the last snapshot: one segment below the threshold, so the total (any
    row's revenue over its revenue_share) less the others would be its revenue. The next
    smallest with revenue is withheld with it (prospects, smaller still, have none by
    definition: hiding their 0 hides nothing); kept rows are the stored aggregates. The
    profiles withhold the same two, suggested names and distinguishing features too."""
    directory, threshold = small
    con = duckdb.connect(str(directory / "segflow.duckdb"), read_only=True)
    stored = {s: (n, rev) for s, n, rev in con.execute(
        "SELECT segment, customers, revenue_12m FROM summary_segments WHERE scheme = 'lifecycle' AND snapshot_date = "
        "(SELECT max(snapshot_date) FROM summary_segments WHERE scheme = 'lifecycle')").fetchall()}
    con.close()
    lone = [s for s, (n, _) in stored.items() if 0 < n < threshold]
    assert len(lone) == 1, stored
    informative = [s for s, (n, rev) in stored.items() if s not in lone and n > 0 and rev != 0]
    complement = min(informative, key=lambda s: (stored[s][0], s))
    assert any(stored[s][1] == 0 and stored[s][0] < stored[complement][0] for s in stored)  # a 0 row passed over
    why = {lone[0]: reason(threshold), complement: complement_reason(threshold)}
    seen, full = _rows(live, "/api/v1/segments/lifecycle")
    assert {r["segment"]: (r["customers"], r["revenue_12m"]) for r in full} == pytest.approx(stored)
    for mine in seen:
        hidden = mine["segment"] in why
        assert mine["withheld"] == why.get(mine["segment"]) and mine["customers"] == stored[mine["segment"]][0]
        assert mine["revenue_12m"] == (None if hidden else pytest.approx(stored[mine["segment"]][1])), mine
        assert (mine["revenue_share"] is None) == hidden
    seen, full = _rows(live, "/api/v1/profiles/lifecycle")
    texts = ["suggested_name", "name", "distinguishing"]
    for mine, theirs in zip(seen, full, strict=True):
        hidden = mine["segment"] in why
        assert mine["withheld"] == why.get(mine["segment"]) and mine["size"] == theirs["size"]
        assert all(theirs[c] for c in texts)
        for column in [*texts, "value", "mean__monetary", "median__recency_days"]:
            assert mine[column] == (None if hidden else theirs[column]), (column, mine)


# -- what the shown rows and a total give away: the withheld rows together hold min customers

def _hidden_customers(rows: list[dict], count: str = "customers") -> int:
    return sum(r[count] for r in rows if r["withheld"])


@pytest.mark.parametrize("pair", [("2024-05-01", "2024-06-01"), ("2024-06-01", "2024-07-01")])
def test_a_matrix_total_less_its_shown_cells_gives_away_no_small_cell(clients, small, pair):
    """The rules scheme has one small cell (1 customer) from May to June, and two of one
    customer each from June to July. The matrix's revenue adds up to the change of the
    segments' total revenue (read by the viewer from any segment's revenue over its share;
    the data is younger than 12 months), so the total less the shown cells was those
    customers' revenue: another cell is withheld with them."""
    _, threshold = small
    viewer, analyst = clients
    first, last = pair

    def total(day: str) -> float:
        row = next(r for r in viewer.get(f"/api/v1/segments/rules?snapshot={day}").json()["data"]
                   if r["revenue_share"])
        return row["revenue_12m"] / row["revenue_share"]

    url = f"/api/v1/migration/rules?from_date={first}&to_date={last}"
    seen, full = viewer.get(url).json()["data"], analyst.get(url).json()["data"]
    small_cells = [r for r in full if 0 < r["customers"] < threshold]
    assert 0 < sum(r["customers"] for r in small_cells) < threshold  # the case: too few to hide alone
    derived = total(last) - total(first) - sum(r["revenue"] for r in seen if not r["withheld"])
    hidden = [theirs for mine, theirs in zip(seen, full, strict=True) if mine["withheld"]]
    assert derived == pytest.approx(sum(r["revenue"] for r in hidden), abs=1e-6)  # what a viewer works out
    assert sum(r["customers"] for r in hidden) >= threshold
    assert [r["withheld"] for r in seen if r["withheld"] and r["customers"] >= threshold] == [complement_reason(threshold)]


def test_two_small_segments_of_too_few_customers_take_another_with_them() -> None:
    """Two segments of one customer each, both withheld: the total less the others was the
    sum of their two revenues (each customer then knows the other's); the smallest other
    segment with revenue is withheld with them. Two small ones of enough customers together
    take none; a lone small one takes one, as before."""
    from segflow._disclosure import withhold_small_cells

    frame = pd.DataFrame({"segment": ["a", "b", "c", "d", "e"], "customers": [1, 1, 7, 6, 20],
                          "revenue_12m": [100.0, 50.0, 500.0, 0.0, 900.0]})
    frame["revenue_share"] = frame["revenue_12m"] / frame["revenue_12m"].sum()
    seen = withhold_small_cells(frame, "viewer", 5, complement="revenue_12m")
    assert _why(seen) == [reason(5), reason(5), complement_reason(5), None, None]
    assert seen["revenue_12m"].isna().tolist() == [True, True, True, False, False]
    total = seen["revenue_12m"].iloc[-1] / seen["revenue_share"].iloc[-1]
    assert total - seen["revenue_12m"].sum() == pytest.approx(650.0)  # 9 customers' sum, not 2
    enough = frame.assign(customers=[3, 2, 7, 6, 20])
    assert _why(withhold_small_cells(enough, "viewer", 5, complement="revenue_12m")) == \
        [reason(5), reason(5), None, None, None]
    lone = frame.assign(customers=[1, 9, 7, 6, 20])
    assert _why(withhold_small_cells(lone, "viewer", 5, complement="revenue_12m")) == \
        [reason(5), None, complement_reason(5), None, None]


def _why(frame: pd.DataFrame) -> list[str | None]:
    return [w if isinstance(w, str) else None for w in frame["withheld"]]


def _arm_rows(by: str, segment: str, control: int, treated: int, rates: tuple[float, float]) -> list[dict]:
    return [{"by": by, "segment": segment, "outcome": "purchased", "arm": arm, "is_control": arm == "control",
             "n": n, "n_control": control, "value": rate} for arm, n, rate in
            (("treatment", treated, rates[0]), ("control", control, rates[1])) if n]


def test_a_small_control_arm_is_not_left_alone_in_its_arm() -> None:
    """A segment with 2 control customers, and the smallest other segment with none (all
    treated): withholding that one with it hid nothing of the control arm, so the (all)
    control rate less the shown segments' was the 2 customers' rate. The smallest segment
    with control customers is withheld with it instead; the treated arms need nothing more
    (the small segment's treated arm has enough customers)."""
    from segflow._disclosure import withhold_small_arms

    segments = {"small": (2, 10, (0.3, 0.5)), "treated only": (0, 6, (0.5, 0.0)),
                "mid": (20, 20, (0.4, 0.25)), "big": (30, 30, (0.2, 0.1))}
    rows = [r for s, (c, t, v) in segments.items() for r in _arm_rows("segment", s, c, t, v)]
    n_c, n_t = (sum(v[i] for v in segments.values()) for i in (0, 1))
    rates = [sum(v[i] * v[2][1 - i] for v in segments.values()) / n for i, n in ((0, n_c), (1, n_t))]
    frame = pd.DataFrame(_arm_rows("(all)", "(all)", n_c, n_t, (rates[1], rates[0])) + rows)
    seen = withhold_small_arms(frame, "viewer", 5)
    why = dict(zip(seen["segment"], _why(seen), strict=True))
    assert why == {"(all)": None, "small": arm_reason(5), "treated only": None, "mid": complement_reason(5), "big": None}
    for arm in ("control", "treatment"):  # what a viewer works out from the (all) row
        rows = seen[seen["arm"] == arm]
        whole = rows[rows["by"] == "(all)"].iloc[0]
        parts = rows[rows["by"] == "segment"]
        hidden = parts[parts["withheld"].notna()]
        shown = parts[parts["withheld"].isna()]
        bought = whole["value"] * whole["n"] - (shown["value"] * shown["n"]).sum()
        truth = frame[(frame["arm"] == arm) & frame["segment"].isin(hidden["segment"])]
        assert bought == pytest.approx((truth["value"] * truth["n"]).sum())
        assert hidden["n"].sum() >= 5


def _holm(p: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values, written out (Holm 1979): the i-th smallest times
    the number of tests not smaller, the running maximum, capped at 1."""
    order = sorted(range(len(p)), key=lambda i: p[i])
    out, running = [0.0] * len(p), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        out[i] = running
    return out


def _campaign(p_small: float) -> pd.DataFrame:
    """A read-out of four segments: ``small`` (2 control customers, treated p-value
    ``p_small``), ``mid`` (the smallest other with control customers: its complement),
    ``big`` and ``other``; p-values adjusted by Holm over the four, as the read-out does."""
    segments = {"small": (2, 10, p_small), "mid": (20, 20, 0.3), "big": (30, 30, 0.011), "other": (25, 35, 0.5)}
    rows = []
    for s, (control, treated, p) in segments.items():
        for arm, n in (("treatment", treated), ("control", control)):
            rows.append({"by": "segment", "segment": s, "outcome": "purchased", "arm": arm,
                         "is_control": arm == "control", "n": n, "n_control": control, "value": 0.5,
                         "p_value": p if arm == "treatment" else None})
    frame = pd.DataFrame(rows)
    treated = frame["arm"] == "treatment"
    frame.loc[treated, "p_adjusted"] = _holm(frame.loc[treated, "p_value"].tolist())
    frame["significant"] = frame["p_adjusted"] < 0.05
    return frame


def test_a_viewer_cannot_recover_a_withheld_p_value_from_the_shown_adjusted_ones() -> None:
    """Holm over every segment made a shown segment's adjusted p the withheld one's p-value
    times 4 (the smallest p-value, 0.01, is the withheld segment's): a viewer divided by 4.
    A viewer's adjusted p-values are Holm's over the shown segments' tests only, the same
    whatever the withheld p-value is."""
    from segflow._disclosure import withhold_small_arms

    analyst = _campaign(0.01)
    big = analyst[(analyst["segment"] == "big") & (analyst["arm"] == "treatment")].iloc[0]
    assert big["p_adjusted"] == pytest.approx(4 * 0.01)  # the leak: 4 x the withheld p-value
    seen = [withhold_small_arms(_campaign(p), "viewer", 5) for p in (0.0001, 0.01, 0.04, 0.9)]
    for frame in seen:
        assert _why(frame) == [arm_reason(5)] * 2 + [complement_reason(5)] * 2 + [None] * 4
        pd.testing.assert_frame_equal(frame, seen[0])  # nothing of the withheld p-value shows
    shown = seen[0][(seen[0]["arm"] == "treatment") & seen[0]["withheld"].isna()]
    assert shown["p_adjusted"].tolist() == pytest.approx(_holm(shown["p_value"].tolist()))  # [0.022, 0.5]
    assert shown["significant"].tolist() == [True, False]
    assert seen[0]["p_adjusted"][seen[0]["withheld"].notna()].isna().all()


def test_rows_whose_figure_is_known_from_their_definition_protect_nothing() -> None:
    """Lifecycle segments: prospects never bought, so their revenue is 0 (but for returns)
    whatever the data. A small row of them with a small row of 2 buyers once made up the
    minimum (4 + 2 customers), leaving the 2 buyers' revenue as the total less the shown
    rows: now the smallest other row with a figure not known is withheld with them. Prospects
    are never taken as the complement (here the smallest, with returns -20.0), and a lone
    small row of prospects takes buyers' rows of 5 customers with it."""
    from segflow._disclosure import known_rows, withhold_small_cells

    frame = pd.DataFrame({"segment": ["loyalists", "one-time", "two-time", "prospects"],
                          "customers": [48, 9, 2, 4], "revenue_12m": [18000.0, 200.0, 187.0, 0.0]})
    frame["revenue_share"] = frame["revenue_12m"] / frame["revenue_12m"].sum()
    known = known_rows(frame, {"prospects"})
    assert known.tolist() == [False, False, False, True]
    assert _why(withhold_small_cells(frame, "viewer", 5, complement="revenue_12m")) == \
        [None, None, reason(5), reason(5)]  # without: 187.0 = the total less the shown rows
    seen = withhold_small_cells(frame, "viewer", 5, complement="revenue_12m", known=known)
    assert _why(seen) == [None, complement_reason(5), reason(5), reason(5)]
    total = seen["revenue_12m"].iloc[0] / seen["revenue_share"].iloc[0]
    assert total - seen["revenue_12m"].sum() == pytest.approx(387.0)  # 11 buyers' sum
    returns = frame.assign(customers=[48, 9, 2, 6], revenue_12m=[18000.0, 200.0, 187.0, -20.0])
    assert _why(withhold_small_cells(returns, "viewer", 5, complement="revenue_12m",
                                     known=known_rows(returns, {"prospects"}))) == \
        [None, complement_reason(5), reason(5), None]
    lone = frame.assign(customers=[48, 9, 6, 4], revenue_12m=[18000.0, 200.0, 187.0, -20.0])
    assert _why(withhold_small_cells(lone, "viewer", 5, complement="revenue_12m",
                                     known=known_rows(lone, {"prospects"}))) == \
        [None, None, complement_reason(5), reason(5)]  # the prospects' returns in a sum of 10
    cells = pd.DataFrame({"from_segment": ["(new)", "prospects", "one-time"],
                          "to_segment": ["prospects", "one-time", "one-time"]})
    assert known_rows(cells, {"prospects"}).tolist() == [True, False, False]  # no purchase before `to`


def test_which_segments_never_bought_in_a_figures_window() -> None:
    """By the schemes' definitions: lifecycle prospects and RFM's "No purchase yet" never
    bought; lifecycle's inactive bought nothing in the last active_days (365 by default), so
    their 12-month revenue (365 days) or a monthly cell's revenue is known, not their
    all-time spend (a profile's value), nor, with active_days = 180, their 12-month revenue.
    Value tiers' "no spend" (net spend <= 0) and rule schemes: none."""
    import tomllib
    import types

    from tests.pipeline._fixture import PROJECT_TOML

    from segflow._disclosure import no_purchase_segments
    from segflow.config import Settings

    text = PROJECT_TOML + '\n[[schemes]]\nname = "short"\nkind = "lifecycle"\nactive_days = 180\n'
    project = types.SimpleNamespace(settings=Settings.model_validate(tomllib.loads(text)))
    assert no_purchase_segments(project, "lifecycle") == {"prospects"}
    assert no_purchase_segments(project, "lifecycle", 365) == no_purchase_segments(project, "lifecycle", 31) == \
        {"prospects", "inactive"}
    assert no_purchase_segments(project, "short", 365) == {"prospects"}
    assert no_purchase_segments(project, "short", 31) == {"prospects", "inactive"}
    assert no_purchase_segments(project, "rfm", 365) == {"No purchase yet"}
    assert no_purchase_segments(project, "tiers", 365) == no_purchase_segments(project, "rules", 365) == set()


@pytest.fixture(scope="module")
def five(_served_template, tmp_path_factory):
    """A client of a viewer and of an analyst on a copy of the served fixture with
    ``min_cell_customers = 5``: lifecycle at its last snapshot has two-time (3 customers) and
    prospects (4) below it."""
    from segflow.server import ServerSettings, create_app

    directory = tmp_path_factory.mktemp("five") / "proj"
    shutil.copytree(_served_template, directory)
    with open(directory / "segflow.toml", "a", encoding="utf-8") as fh:
        fh.write("\n[server]\nmin_cell_customers = 5\n")
    tokens = dict(line.split(" ", 1) for line in (directory / "tokens.txt").read_text().splitlines())
    app = create_app(ServerSettings(project_dir=directory, allowed_hosts=["testserver"], poll_seconds=0))
    with _client(app, tokens["viewer"]) as viewer, _client(app, tokens["analyst"]) as analyst:
        yield viewer, analyst


def test_lifecycle_prospects_do_not_make_up_the_minimum(five):
    """At 5, lifecycle's two-time (3 customers) and prospects (4) are withheld; 7 customers,
    but the prospects' revenue is 0 by definition, so the total less loyalists and one-time
    was two-time's revenue. One-time, the smallest row of buyers, is withheld with them."""
    seen, full = _pair(five, "/api/v1/segments/lifecycle")
    stored = {r["segment"]: r for r in full["data"]}
    assert {s: r["customers"] for s, r in stored.items()} == {"loyalists": 48, "one-time": 5, "prospects": 4,
                                                             "two-time": 3}
    assert stored["prospects"]["revenue_12m"] == 0 and stored["two-time"]["revenue_12m"] > 0
    why = {r["segment"]: r["withheld"] for r in seen["data"]}
    assert why == {"loyalists": None, "one-time": complement_reason(5), "prospects": reason(5),
                   "two-time": reason(5)}
    shown = next(r for r in seen["data"] if r["withheld"] is None)
    derived = shown["revenue_12m"] / shown["revenue_share"] - shown["revenue_12m"]
    assert derived == pytest.approx(stored["two-time"]["revenue_12m"] + stored["one-time"]["revenue_12m"])
    seen, full = _pair(five, "/api/v1/profiles/lifecycle")
    assert {r["segment"]: r["withheld"] for r in seen["data"]} == why
