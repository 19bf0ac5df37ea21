"""The ground truth is what the data shows: transitions, group behaviour, campaign effects."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segflow.datasets import GROUPS, TRANSITION_MATRIX
from segflow.datasets import _spec as S


@pytest.fixture(scope="module")
def latent(demo_dir) -> pd.DataFrame:
    frame = pd.read_parquet(demo_dir / "truth" / "latent_groups.parquet")
    return frame.assign(month=pd.to_datetime(frame["month"]))


@pytest.fixture(scope="module")
def monthly(demo_dir, latent) -> pd.DataFrame:
    """Per customer and month: latent group, clean orders, web sessions without a purchase."""
    tx = pd.read_parquet(demo_dir / "transactions.parquet")
    defects = pd.read_csv(demo_dir / "truth" / "defects.csv")
    bad = defects.loc[defects["file"] == "transactions.parquet", "row_number"] - 1
    tx = tx.drop(index=bad)
    tx = tx[tx["order_id"].str.startswith("O")]
    tx["month"] = tx["order_date"].dt.to_period("M").dt.to_timestamp()
    orders = tx.groupby(["customer_id", "month"]).size().rename("orders")
    ev = pd.read_parquet(demo_dir / "events.parquet")
    ev["month"] = ev["ts"].dt.to_period("M").dt.to_timestamp()
    bought = set(ev.loc[ev["event_type"] == "purchase", "session_id"])
    sessions = ev[ev["event_type"] == "visit"]  # one visit opens each session
    sessions = sessions[~sessions["session_id"].isin(bought)]
    browse = sessions.groupby(["customer_id", "month"]).size()
    frame = latent.join(orders, on=["customer_id", "month"]).join(
        browse.rename("browse"), on=["customer_id", "month"]
    )
    return frame.fillna({"orders": 0, "browse": 0})


def test_transition_matrix_file_is_the_true_matrix(demo_dir):
    m = pd.read_csv(demo_dir / "truth" / "transition_matrix.csv", index_col="from_group")
    assert list(m.index) == list(GROUPS) and list(m.columns) == list(GROUPS)
    assert np.allclose(m.to_numpy(), TRANSITION_MATRIX)
    assert np.allclose(m.sum(axis=1), 1.0)
    assert m.loc["churned", "churned"] == 1.0  # absorbing


def _moves(latent: pd.DataFrame) -> pd.DataFrame:
    """(customer_id, month, from, to) for every month-to-month move in the latent truth."""
    frame = latent.sort_values(["customer_id", "month"])
    nxt = frame.groupby("customer_id")["group"].shift(-1)
    return frame.assign(**{"from": frame["group"], "to": nxt}).dropna(subset=["to"])


def _treated(demo_dir, campaign: str) -> pd.DataFrame:
    ex = pd.read_parquet(demo_dir / "campaign_exposures.parquet")
    sends = ex[(ex["campaign_id"] == campaign) & (ex["exposure_type"] == "send")]
    return sends.drop_duplicates("customer_id")[["customer_id", "arm"]]


def test_empirical_transitions_match_the_true_matrix(latent, demo_dir):
    """Counts of month-to-month moves in the latent truth agree with the matrix (4 s.e.).

    The moves out of the win-back month of treated customers follow the campaign's rows
    (tested below) and are left out here."""
    pairs = _moves(latent)
    effect = pd.read_csv(demo_dir / "truth" / "campaign_transitions.csv")
    send = pd.Timestamp(effect.loc[effect["campaign_id"] == "CMP_WINBACK", "from_month"].iloc[0])
    treated = _treated(demo_dir, "CMP_WINBACK").query("arm == 'treatment'")["customer_id"]
    pairs = pairs[~((pairs["month"] == send) & pairs["customer_id"].isin(treated))]
    counts = pd.crosstab(pairs["from"], pairs["to"]).reindex(index=GROUPS, columns=GROUPS,
                                                              fill_value=0)
    n = counts.sum(axis=1).to_numpy()[:, None]
    assert n.min() > 1000
    emp = counts.to_numpy() / n
    se = np.sqrt(TRANSITION_MATRIX * (1 - TRANSITION_MATRIX) / n)
    assert (np.abs(emp - TRANSITION_MATRIX) <= 4 * se + 1e-12).all()
    assert (emp[TRANSITION_MATRIX == 0] == 0).all()  # impossible moves never happen


def test_customers_are_acquired_over_time(latent, demo):
    first = latent.groupby("customer_id")["month"].min()
    share0 = (first == pd.Timestamp(demo.start)).mean()
    assert abs(share0 - S.EXISTING_SHARE) < 0.03
    later = first[first > pd.Timestamp(demo.start)]
    assert later.nunique() == demo.months - 1  # acquisitions in every later month


def test_order_rates_follow_group_and_season(monthly):
    """Mean orders per customer-month equal the group's rate times the season (full months)."""
    full = monthly[monthly["month"] > monthly.groupby("customer_id")["month"].transform("min")]
    cal = full["month"].dt.month
    for g in ("champions", "regulars", "occasional", "browsers", "lapsing"):
        rows = full[(full["group"] == g) & cal.isin([4, 5, 6, 8, 9])]
        expected = S.ORDER_RATE[S.G[g]] * S.SEASONALITY[rows["month"].dt.month - 1].mean()
        se = np.sqrt(expected / len(rows))  # Poisson
        assert abs(rows["orders"].mean() - expected) < 4 * se + 1e-9, g
    dec = full[(full["group"] == "regulars") & (cal == 12)]["orders"].mean()
    feb = full[(full["group"] == "regulars") & (cal == 2)]["orders"].mean()
    assert dec / feb == pytest.approx(S.SEASONALITY[11] / S.SEASONALITY[1], rel=0.15)
    seasonal = full[full["group"] == "seasonal"]
    in_q4 = seasonal[seasonal["month"].dt.month.isin(S.SEASONAL_MONTHS)]["orders"].mean()
    off = seasonal[~seasonal["month"].dt.month.isin(S.SEASONAL_MONTHS)]["orders"].mean()
    assert in_q4 > 15 * off  # the seasonal group buys mainly around Christmas
    assert (full.loc[full["group"] == "churned", "orders"] == 0).all()


def test_browsers_browse_a_lot_and_rarely_buy(monthly, demo_dir):
    full = monthly[monthly["month"] > monthly.groupby("customer_id")["month"].transform("min")]
    by = full.groupby("group")[["orders", "browse"]].mean()
    assert by.loc["browsers", "browse"] > 3 * by.drop(index="browsers")["browse"].max()
    assert by.loc["browsers", "orders"] < 0.1 * by.loc["regulars", "orders"]
    ev = pd.read_parquet(demo_dir / "events.parquet")
    funnel = ev["event_type"].value_counts()
    assert funnel["visit"] > funnel["cart_add"] > funnel["purchase"] > 0  # abandoned carts


def test_campaign_effect_is_planted_for_lapsing_customers_only(demo_dir, monthly):
    """Treatment vs control purchase probability in the send month, per latent group."""
    effects = pd.read_csv(demo_dir / "truth" / "campaign_effects.csv")
    ex = pd.read_parquet(demo_dir / "campaign_exposures.parquet")
    ex = ex[(ex["exposure_type"] == "send") & ex["customer_id"].str.match(r"^C\d+$")]
    ex = ex.drop_duplicates(["campaign_id", "customer_id"])
    sends = effects.groupby("campaign_id")[["n_treatment", "n_control"]].sum()
    arms = ex.groupby(["campaign_id", "arm"]).size().unstack()
    # equal up to the few send rows whose customer id was replaced by an unknown one
    assert arms["treatment"].sub(sends["n_treatment"]).abs().max() <= 10
    assert arms["control"].sub(sends["n_control"]).abs().max() <= 10
    win = effects[effects["campaign_id"] == "CMP_WINBACK"].set_index("group")
    month = pd.Timestamp(win["window_start"].iloc[0])
    got = ex[ex["campaign_id"] == "CMP_WINBACK"].merge(
        monthly[monthly["month"] == month], on="customer_id")
    got["bought"] = got["orders"] > 0
    rate = got.groupby(["group", "arm"])["bought"].agg(["mean", "size"]).unstack()
    for g in ("lapsing", "champions", "regulars"):
        for arm, col in (("treatment", "purchase_prob_treatment"), ("control", "purchase_prob_control")):
            p, n = win.loc[g, col], rate.loc[g, ("size", arm)]
            se = np.sqrt(p * (1 - p) / n)
            assert abs(rate.loc[g, ("mean", arm)] - p) < 4 * se + 1e-9, (g, arm)
    assert win.loc["lapsing", "rate_multiplier"] > 2
    assert win.loc["champions", "rate_multiplier"] == 1
    news = effects[effects["campaign_id"] == "CMP_NEWSLETTER"]
    assert (news["rate_multiplier"] == 1).all()


def test_win_back_changes_the_next_move_of_treated_lapsing_customers(latent, demo_dir):
    """Treated lapsing customers move with the campaign's row, control ones with the base row."""
    effect = pd.read_csv(demo_dir / "truth" / "campaign_transitions.csv")
    win = effect[(effect["campaign_id"] == "CMP_WINBACK") & (effect["from_group"] == "lapsing")]
    send = pd.Timestamp(win["from_month"].iloc[0])
    pairs = _moves(latent)
    pairs = pairs[(pairs["month"] == send) & (pairs["from"] == "lapsing")]
    pairs = pairs.merge(_treated(demo_dir, "CMP_WINBACK"), on="customer_id")
    base = TRANSITION_MATRIX[S.G["lapsing"]]
    for arm in ("treatment", "control"):
        row = win.set_index("arm").loc[arm, list(GROUPS)].to_numpy(dtype=float)
        if arm == "control":
            assert np.allclose(row, base)
        moves = pairs[pairs["arm"] == arm]["to"].value_counts().reindex(GROUPS, fill_value=0)
        n = moves.sum()
        assert n > 50
        se = np.sqrt(row * (1 - row) / n)
        assert (np.abs(moves.to_numpy() / n - row) <= 4 * se + 1e-12).all(), arm
    treated_row = win.set_index("arm").loc["treatment", list(GROUPS)].to_numpy(dtype=float)
    assert treated_row[S.G["churned"]] < base[S.G["churned"]]  # fewer churn after the win-back
