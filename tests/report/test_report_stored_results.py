"""The model results the run stores (``summary_results``: CLV diagnostics, campaign read-outs,
overview totals) equal a recomputation from the customer-level tables, and the report built
from them equals the report that recomputes them, on the demo project. Also: a run with
nothing to compute adds the results a store lacks, and the weekly tracking chart leaves out
a last week cut short by the snapshot."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(demo_project):
    from segflow.project import Project

    with Project.open(demo_project, read_only=True) as p:
        yield p


def test_stored_clv_diagnostics_equal_a_refit(project):
    from segflow.report._clv import ClvDiagnostics
    from segflow.summaries import stored_result
    from segflow.summaries._results import clv_diagnostics_document, document_frame

    snapshot, stored = stored_result(project.store, "clv_diagnostics")
    assert snapshot == project.snapshot_dates()[-1]
    # the recomputation fits both models itself (the report did this before)
    fresh = clv_diagnostics_document(project.store.table("transactions"), snapshot)
    for model in ("model", "calibration_model"):
        assert stored[model]["model"] == fresh[model]["model"] == "BetaGeoModel"
        for k, v in fresh[model]["params"].items():
            assert stored[model]["params"][k] == pytest.approx(v, rel=1e-9)
    for key in ("typical_T", "max_x", "one_time_customers", "customers", "tracking_start", "calibration_end"):
        assert stored[key] == fresh[key], key
    assert stored["customers"] > 1000 and stored["one_time_customers"] > 0
    for part in ("tracking", "deciles"):
        pd.testing.assert_frame_equal(document_frame(stored[part]), document_frame(fresh[part]))
    assert document_frame(stored["tracking"])["actual"].sum() > 1000  # real purchases
    a, b = ClvDiagnostics.from_document(stored), ClvDiagnostics.from_document(fresh)
    np.testing.assert_allclose(a.expected, b.expected, rtol=1e-9)
    np.testing.assert_allclose(a.p_alive, b.p_alive, rtol=1e-9)
    assert a.caveats() == b.caveats()
    # the stored matrices are the model's: repeat purchases x week of the last purchase
    xx, rr = np.meshgrid(a.grid_x, a.grid_recency, indexing="ij")
    t_x, ages = np.where(xx == 0, 0.0, rr.astype(float)), np.full(xx.shape, a.typical_T)
    np.testing.assert_array_equal(a.expected, a.model.expected_purchases(52.0, xx, t_x, ages))
    np.testing.assert_array_equal(a.p_alive, a.model.p_alive(xx, t_x, ages))
    assert a.expected.shape == (stored["max_x"] + 1, int(stored["typical_T"]) + 1)
    # the stored model is the run's own (model_params), the one behind the stored scores
    from segflow.models import load_model_params

    saved = load_model_params(project.store.raw, snapshot_date=snapshot, model="bgnbd_gg")["count"]
    assert stored["model"]["params"] == {k: float(v) for k, v in saved.params_.items()}


def test_stored_campaign_readouts_equal_a_recomputation(project):
    from segflow.campaigns import campaign_reports
    from segflow.summaries import campaign_from_document, stored_result

    _, stored = stored_result(project.store, "campaigns")
    assert stored["scheme"] == "lifecycle"
    fresh = campaign_reports(project.store, stored["scheme"])
    assert len(stored["reports"]) == len(fresh) >= 1
    for doc, want in zip(stored["reports"], fresh, strict=True):
        got = campaign_from_document(doc)
        assert (got.campaign_id, got.start, got.end, got.window_days, got.notes) == (
            want.campaign_id, want.start, want.end, want.window_days, want.notes)
        pd.testing.assert_frame_equal(got.effect.table, want.effect.table.reset_index(drop=True))
        assert want.effect.table["n"].sum() > 0
        if want.migration is None:
            assert got.migration is None
            continue
        for part in ("counts", "shares", "lapsed_into"):
            pd.testing.assert_frame_equal(getattr(got.migration, part).reset_index(drop=True),
                                          getattr(want.migration, part).reset_index(drop=True))


def test_stored_overview_equals_the_transactions_totals(project):
    from segflow.report._queries import revenue_totals
    from segflow.summaries import overview_from_document, stored_result

    _, stored = stored_result(project.store, "overview")
    want = revenue_totals(project.store)
    assert overview_from_document(stored) == want
    # and an independent pandas computation
    t = project.store.sql("SELECT customer_id, ts, amount FROM transactions").to_pandas()
    assert want["transactions"] == len(t)
    assert want["net_revenue"] == pytest.approx(t.amount.sum(), abs=0.005)
    assert want["customers"] == t.customer_id.nunique()


_FIGURE = re.compile(r'<script type="application/json" id="[^"]*">(.*?)</script>', re.S)


def _normalised(section) -> str:
    return re.sub(r"chart-([\w-]+?)-[0-9a-f]{8}", r"chart-\1", "".join(section.blocks))


def _plain(value):
    """A figure's JSON with Plotly's base64 arrays decoded (to compare numbers, not bytes)."""
    import base64

    if isinstance(value, dict):
        if "bdata" in value and "dtype" in value:
            return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).tolist()
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _assert_same_section(got, want) -> None:
    """Equal text and tables; figures with equal numbers (to 1e-9: sums over parallel
    threads may differ in the last bits)."""
    import json

    a, b = _normalised(got), _normalised(want)
    assert _FIGURE.sub("<figure>", a) == _FIGURE.sub("<figure>", b), got.id
    figures_a, figures_b = _FIGURE.findall(a), _FIGURE.findall(b)
    assert len(figures_a) == len(figures_b)
    for fa, fb in zip(figures_a, figures_b, strict=True):
        _assert_close(_plain(json.loads(fa)), _plain(json.loads(fb)), got.id)


def _assert_close(a, b, where: str) -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            _assert_close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for x, y in zip(a, b, strict=True):
            _assert_close(x, y, where)
    elif isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-9, nan_ok=True), where
    else:
        assert a == b, where


def test_report_sections_from_stored_results_equal_the_recomputed_ones(project, monkeypatch):
    from segflow.report import _report
    from segflow.report._context import ReportContext

    stored_ctx = ReportContext(project)
    assert stored_ctx.stored and stored_ctx.stored_result("clv_diagnostics") is not None
    from segflow.report._sections import migration_section

    sections = [_report.overview_section, _report.value_section, _report.campaigns_section, migration_section]
    from_store = [build(stored_ctx) for build in sections]
    # the same report with nothing read from summary_results: computed as before
    monkeypatch.setattr(ReportContext, "stored_result", lambda self, name: None)
    monkeypatch.setattr("segflow.summaries.stored_result", lambda store, name: None)
    computed = [build(ReportContext(project)) for build in sections]
    for got, want in zip(from_store, computed, strict=True):
        _assert_same_section(got, want)
    value = _normalised(from_store[1])
    assert "Calibration by decile" in value and "How far to trust the model" in value


def test_tracking_chart_leaves_out_a_partial_last_week(project):
    diag = project.clv_diagnostics()
    tracking = diag.tracking()
    last = tracking.iloc[-1]
    # the demo's history starts on a Monday 78 weeks and 1 day before the snapshot
    assert (diag.snapshot - last.week_starting).days == last.days < 7 and not last.complete
    assert tracking["complete"].iloc[:-1].all()
    fig = diag.figures()["tracking"]
    weekly = [tr for tr in fig.data if tr.xaxis == "x2"]
    assert weekly and all(pd.Timestamp(max(tr.x)).date() == tracking.week_starting.iloc[-2] for tr in weekly)
    assert f"the last week, from {last.week_starting} ({last.days} of 7 days" in fig.layout.title.text


def test_a_run_with_nothing_to_compute_adds_missing_results(demo_project, tmp_path):
    from segflow.project import Project

    copy = tmp_path / "demo"
    shutil.copytree(demo_project, copy, ignore=shutil.ignore_patterns("report.html", "*.wal"))
    with Project.open(copy) as p:
        before = p.store.sql("SELECT name, snapshot_date, document FROM summary_results ORDER BY 1").to_pandas()
        p.store.raw.execute("DELETE FROM summary_results WHERE name IN ('clv_diagnostics', 'campaigns')")
        summary = p.run()
        assert summary.snapshots_computed == []
        after = p.store.sql("SELECT name, snapshot_date, document FROM summary_results ORDER BY 1").to_pandas()
    pd.testing.assert_frame_equal(after, before)


def test_a_stored_diagnostics_failure_is_what_the_report_shows(tmp_path, monkeypatch):
    """When the run's diagnostics fail (e.g. a BG/NBD parameter at its bound), the report
    shows that stored failure; it does not refit (the report on Spark has no transactions
    to refit from, and showed an unrelated "no customers" error)."""
    from segflow.datasets import demo_project_toml, generate_demo
    from segflow.errors import SegflowError
    from segflow.project import Project
    from segflow.report._clv import HOLDOUT_WEEKS, clv_diagnostics
    from segflow.summaries import _results, stored_result

    data = generate_demo(tmp_path / "data", customers=150, months=6, seed=3)

    def failing(message):
        def fit(*args, **kwargs):
            raise SegflowError(message)
        return fit

    monkeypatch.setattr(_results, "clv_diagnostics_document", failing("the run's fit failed"))
    with Project.init(tmp_path, toml_text=demo_project_toml("data", max_date=data.end)) as p:
        p.ingest()
        p.run()
        snapshot, doc = stored_result(p.store, "clv_diagnostics")
        assert doc == {"error": "the run's fit failed", "holdout_weeks": HOLDOUT_WEEKS}
        monkeypatch.setattr(_results, "clv_diagnostics_document", failing("a refit"))
        with pytest.raises(SegflowError, match="the run's fit failed"):
            clv_diagnostics(p.store, snapshot)
        # another holdout than the run's is computed, not read
        with pytest.raises(SegflowError, match="a refit"):
            clv_diagnostics(p.store, snapshot, holdout_weeks=HOLDOUT_WEEKS + 1)
        # a failure stored by older code (no holdout) is read for the default holdout
        p.store.raw.execute("UPDATE summary_results SET document = '{\"error\": \"old\"}' "
                            "WHERE name = 'clv_diagnostics'")
        with pytest.raises(SegflowError, match="old"):
            clv_diagnostics(p.store, snapshot)


def test_diagnostics_without_history_before_the_holdout_say_so(tmp_path, monkeypatch):
    """Four months of data: the 26 weeks held out before the snapshot leave no purchase to
    calibrate on; the message says that, not the model's "the summary holds no customers"."""
    import datetime as dt

    from segflow.datasets import demo_project_toml, generate_demo
    from segflow.errors import SegflowError
    from segflow.project import Project
    from segflow.summaries._results import clv_diagnostics_document

    data = generate_demo(tmp_path / "data", customers=100, months=4, seed=1)
    with Project.init(tmp_path, toml_text=demo_project_toml("data", max_date=data.end)) as p:
        p.ingest()
        snapshot = data.end
        cal_end = snapshot - dt.timedelta(weeks=26)
        assert p.store.sql(f"SELECT count(*) FROM transactions WHERE ts < DATE '{cal_end}'") \
            .to_pandas().iloc[0, 0] == 0  # the premise: nothing before the calibration end
        with pytest.raises(SegflowError, match=f"no customer bought before the calibration end "
                                               f"{cal_end} \\(the snapshot {snapshot} less the "
                                               "26-week holdout\\)"):
            clv_diagnostics_document(p.store.table("transactions"), snapshot)
        # the holdout's reason comes before any fit's: so even where the full-history fit
        # itself fails (as it may on a nearly flat likelihood, depending on the CPU)
        from segflow.models import BetaGeoModel

        def failing_fit(self, *args, **kwargs):
            raise SegflowError("the full-history fit failed")

        monkeypatch.setattr(BetaGeoModel, "fit", failing_fit)
        with pytest.raises(SegflowError, match="no customer bought before the calibration end"):
            clv_diagnostics_document(p.store.table("transactions"), snapshot)


def test_forecast_document_is_keyed_in_scheme_name_order(project):
    """The DuckDB run passes its schemes sorted, the Spark run in the settings' order: the
    stored document (one JSON text) must not depend on it."""
    from segflow.summaries._results import dumps, forecast_document

    schemes = ["value_tiers", "rfm", "lifecycle"]
    doc = forecast_document(project.store, schemes)
    assert list(doc) == ["lifecycle", "rfm", "value_tiers"]
    assert dumps(forecast_document(project.store, schemes[::-1])) == dumps(doc)
