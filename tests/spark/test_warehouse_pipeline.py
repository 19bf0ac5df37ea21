"""The demo pipeline on the two-worker cluster, warehouse in a local folder: the same results
as on DuckDB, a killed driver leaves the committed state, a killed worker changes nothing.

One demo project, ingested by DuckDB and its loads pushed to the cluster's warehouse; DuckDB's
run is the reference. A ``segflow run`` in its own process (its own driver
on the cluster) is killed mid-run; then ``segflow run`` (``[engine] kind = "spark"``) runs on
the cluster from the warehouse while worker 1 is killed, and must give identical
assignments, change rows, transition matrices and reconciliation counts, and the same CLV
scores to float tolerance; the report built from the warehouse's aggregates shows DuckDB's
segment tables, profiles, audit, CLV diagnostics, campaign read-outs and forecasts, and the
served warehouse copy answers the API (real-time scoring included) as DuckDB's. One full
cluster run in all (each costs minutes on 2 cores): the session's ``cluster_demo``
(tests/spark/_cluster_demo.py, which records what each fault left), whose warehouse
test_warehouse_cli.py reads too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.spark._cluster_demo import MONTHS, cli, store_root, warehouse_store
from tests.spark._cluster_demo import duck as _duck

from segflow.features._survey import question_column

pytestmark = [pytest.mark.spark, pytest.mark.slow]

KEY = ["scheme", "snapshot_date", "customer_id"]


def _sorted(frame: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    out = frame.copy()
    for col in out.columns:
        if col.endswith("date") or col in ("valid_from", "valid_to"):
            out[col] = pd.to_datetime(out[col]).astype("datetime64[ns]")
    return out.sort_values(key, ignore_index=True)


def _reference(project) -> dict[str, pd.DataFrame]:
    return {
        "assignments": _sorted(_duck(project, "SELECT scheme, snapshot_date, customer_id, segment, "
                                     "segment_rank FROM segment_assignments"), KEY),
        "scores": _sorted(_duck(project, "SELECT snapshot_date, customer_id, score, value FROM "
                                "customer_scores WHERE model = 'bgnbd_gg'"),
                          ["customer_id", "score"]),
    }


def _warehouse_state(store) -> dict[str, pd.DataFrame]:
    a = store.table("segment_assignments").to_pandas()
    s = store.table("customer_scores").to_pandas()
    a["segment_rank"] = a["segment_rank"].astype("Int64")
    return {
        "assignments": _sorted(a[[*KEY[:2], "customer_id", "segment", "segment_rank"]], KEY),
        "scores": _sorted(s[["snapshot_date", "customer_id", "score", "value"]],
                          ["customer_id", "score"]),
    }


def assert_same_results(got: dict[str, pd.DataFrame], want: dict[str, pd.DataFrame]) -> None:
    ga, wa = got["assignments"], want["assignments"]
    assert len(wa) > 500
    wa = wa.assign(segment_rank=wa["segment_rank"].astype("Int64"))
    pd.testing.assert_frame_equal(ga, wa, check_dtype=False)
    gs, ws = got["scores"], want["scores"]
    assert len(ws) > 200
    pd.testing.assert_frame_equal(gs.drop(columns="value"), ws.drop(columns="value"),
                                  check_dtype=False)
    # the fit runs on the driver from the same distinct triples: equal to float tolerance
    np.testing.assert_allclose(gs["value"], ws["value"], rtol=1e-6, atol=1e-9, equal_nan=True)


def _assert_conformance(project, store, want) -> None:
    """The warehouse's results against the DuckDB run of the same project: assignments and
    scores (assert_same_results), change rows, transition aggregates and the library's
    transition matrix on the warehouse's tables. The warehouse stores no per-snapshot
    assignments: its ``segment_assignments`` (compared above) is derived from the change rows."""
    assert_same_results(_warehouse_state(store), want)
    stored = {p.name for p in store_root(store).iterdir() if any(p.glob("run_id=*"))}
    assert {"segment_spells", "segment_snapshots", "customer_scores"} <= stored
    assert "segment_assignments" not in stored and "segment_assignments" in store.tables()
    run = store.committed_runs()[-1]
    assert set(store.table("segment_assignments").to_pandas()["run_id"]) == {run}
    # the cluster scheme's model: fitted once on each engine, saved with the run, the same
    models = store.dataframe("cluster_models").toPandas()
    duck = _duck(project, "SELECT scheme, scheme_version, k, snapshot_date, model_json "
                 "FROM cluster_models")
    assert len(models) == len(duck) == 1 and models["scheme"][0] == duck["scheme"][0] == "clusters"
    assert models["k"][0] == duck["k"][0]
    assert pd.Timestamp(models["snapshot_date"][0]) == pd.Timestamp(duck["snapshot_date"][0])
    got, ref = (json.loads(m) for m in (models["model_json"][0], duck["model_json"][0]))
    assert got["names"] == ref["names"] and got["shares"] == ref["shares"]
    np.testing.assert_allclose(np.array(got["centers"]), np.array(ref["centers"]), rtol=1e-9)
    # the latest snapshot's full features (profiles read them): each run derives them from
    # its one pass's feature state; DuckDB's, money to 1e-4, other floats to 1e-9
    from tests.features.test_snapshot_features import assert_same_columns

    w = _sorted(_duck(project, "SELECT * FROM customer_features"), ["customer_id"])
    g = _sorted(store.table("customer_features").to_pandas()[w.columns.tolist()], ["customer_id"])
    assert len(w) > 50 and g.customer_id.tolist() == w.customer_id.tolist()
    assert_same_columns(g, w, w.columns[1:])
    # change rows: the same spells as DuckDB's (one Ibis expression, segflow.store._spells)
    cols = "scheme, scheme_version, customer_id, segment, segment_rank, valid_from, valid_to"
    spells_key = ["scheme", "customer_id", "valid_from"]
    w = _sorted(_duck(project, f"SELECT {cols} FROM segment_spells"), spells_key)
    g = _sorted(store.table("segment_spells").to_pandas()[w.columns.tolist()], spells_key)
    assert 0 < len(w) < len(want["assignments"])
    pd.testing.assert_frame_equal(g, w, check_dtype=False)
    # transition matrices: the report's aggregate, computed by Spark, against DuckDB's
    cell = ["scheme", "from_date", "to_date", "from_segment", "to_segment"]
    wt = _sorted(_duck(project, "SELECT * EXCLUDE (run_id) FROM summary_transitions"), cell)
    gt = _sorted(store.table("summary_transitions").to_pandas()[wt.columns.tolist()], cell)
    assert len(wt) > 40
    pd.testing.assert_frame_equal(gt[cell + ["customers"]], wt[cell + ["customers"]],
                                  check_dtype=False)
    for col in ("revenue", "revenue_12m"):
        np.testing.assert_allclose(gt[col].astype(float), wt[col].astype(float), rtol=1e-9,
                                   atol=1e-6, equal_nan=True, err_msg=col)
    # sums of CLV scores: the scores' tolerance (the driver's fit agrees to ~1e-7 between
    # the engines: its distinct triples arrive in another order)
    np.testing.assert_allclose(gt["clv"].astype(float), wt["clv"].astype(float), rtol=1e-6,
                               atol=1e-6, equal_nan=True, err_msg="clv")
    # ... and the library's transition matrix on the warehouse's tables, for one pair
    from segflow.migration import transition_matrix

    dates = project.snapshot_dates("rfm")
    m_spark = transition_matrix(store.table("segment_assignments"), scheme="rfm",
                                from_date=dates[-2], to_date=dates[-1],
                                transactions=store.table("transactions")).to_pandas()
    m_duck = project.transitions("rfm").to_pandas()
    for m in (m_spark, m_duck):
        m["revenue"] = m["revenue"].round(2)
    pd.testing.assert_frame_equal(m_spark, m_duck, check_dtype=False)


#: Spark jobs of the run's results stage (profiles, audit, documents and their writes) on
#: this demo, at most: 126 before session 31, about 90 after (docs/benchmarks.md, "Session
#: 31"); job counts are fixed by the query plans (adaptive execution off), not by timing.
RESULTS_JOBS_MAX = 105


def test_demo_pipeline_on_the_cluster_survives_a_killed_driver_and_a_killed_worker(
        cluster_demo, cluster_session, tmp_path):
    """The loads pushed to the cluster's warehouse; a ``segflow run`` in its own process (its
    own driver on the cluster) SIGKILLed mid-run leaves the pushed state committed and readable; ``segflow run`` then loses
    worker 1 (SIGKILL, executor included) mid-run: Spark retries the lost tasks on the
    other worker, the run commits, and its results are DuckDB's; vacuum removes the killed
    run's files. (The runs are the session's ``cluster_demo``: what each left is checked
    here.)"""
    demo = cluster_demo
    project = demo.project
    assert demo.ingested_rows["transactions"] > 200
    assert len(demo.pushed) == 1  # the push
    # -- a driver killed mid-run -------------------------------------------------------
    assert demo.driver_alive, "the driver finished before it could be killed:\n" + demo.driver_log
    run_id, after = demo.killed_run, demo.after_kill
    assert after["committed"] == demo.pushed
    assert after["statuses"] == {"running"}
    assert after["rows"] == demo.ingested_rows  # the committed state reads as ingested
    assert "segment_assignments" not in after["tables"]

    # -- the run on the cluster, losing a worker mid-run --------------------------------
    # the results stage runs few Spark jobs (each costs scheduling, whatever the data)
    counted = demo.results_jobs
    assert len(counted) == 1 and 0 < counted[0] <= RESULTS_JOBS_MAX, counted
    assert demo.worker_killed_at is not None and demo.worker_killed_at < demo.finished_at, \
        "the worker was not killed mid-run"
    assert demo.alive_workers == 1
    store = warehouse_store(cluster_session)
    runs = store.committed_runs()
    assert len(runs) == 2 and runs[0] == demo.pushed[0] and runs[1] != run_id
    assert runs[1] == demo.summary["run_id"]
    # the run read and wrote the warehouse only: the DuckDB store has its runs as before
    assert _duck(project, "SELECT run_id, status FROM runs ORDER BY ALL").equals(demo.duck_runs)
    _assert_conformance(project, store, _reference(project))
    # the killed run's data folders (if it got as far as writing any) go; its log stays
    root = store_root(store)
    assert set(store.vacuum()) <= {run_id}
    assert [p.parent.name for p in root.glob(f"*/run_id={run_id}")] == ["runs"]
    _assert_same_report(project, store, tmp_path)
    _assert_same_dashboard(project, store)


def _assert_same_report(project, store, tmp_path: Path) -> None:
    """The report built from the warehouse's aggregates shows DuckDB's segment tables,
    transitions and totals; ``segflow report`` on Spark writes it."""
    from segflow.project import Project
    from segflow.report._context import ReportContext
    from segflow.warehouse import aggregates_store

    duck = ReportContext(project)
    with Project(project.directory, project.settings, aggregates_store(store)) as view:
        spark = ReportContext(view)
        assert spark.stored and duck.stored
        assert spark.schemes == duck.schemes and len(duck.schemes) >= 5
        for scheme in duck.schemes:
            dates = duck.dates(scheme)
            assert spark.dates(scheme) == dates and len(dates) == MONTHS
            for d in dates:
                pd.testing.assert_frame_equal(spark.sizes(scheme, d), duck.sizes(scheme, d),
                                              check_dtype=False, rtol=1e-9, obj=f"{scheme} {d}")
            w, g = duck.movements(scheme), spark.movements(scheme)
            pd.testing.assert_frame_equal(g.drop(columns="clv"), w.drop(columns="clv"),
                                          check_dtype=False, rtol=1e-9)
        for key, value in duck.totals.items():  # amounts to float tolerance, dates equal
            want = pytest.approx(value, rel=1e-9) if isinstance(value, float) else value
            assert spark.totals[key] == want, key
        pd.testing.assert_frame_equal(spark.reconciliation, duck.reconciliation,
                                      check_dtype=False)
        _assert_same_stored_results(project, store, view, duck, spark)
    out = tmp_path / "report.html"
    cli("report", "-p", str(project.directory), "-o", str(out))
    html = out.read_text()
    assert "segflow" in html.lower() and duck.headline_scheme in html
    # the same sections (profiles, audit, CLV diagnostics, campaigns, forecasts) as DuckDB's
    duck_html = project.report(tmp_path / "duck.html", engine="duckdb").read_text()
    headings = [re.findall(r"<h[234][^>]*>(.*?)</h[234]>", h, flags=re.S) for h in (html, duck_html)]
    assert headings[0] == headings[1] and len(headings[1]) > 10


def _undated(audit: pd.DataFrame) -> pd.DataFrame:
    """The audit's advice without its audit date, the day the run audited ("today"): the
    DuckDB and Spark runs of this test may fall on either side of midnight UTC."""
    return audit.assign(advice=audit["advice"].str.replace(
        r"audit date \d{4}-\d{2}-\d{2}", "audit date (today)", regex=True))


def _assert_same_stored_results(project, warehouse, view, duck, spark) -> None:
    """What the Spark run stored beyond the segment aggregates, against the DuckDB run's:
    segment profiles, the data audit, the model results (CLV diagnostics, campaign
    read-outs, forecasts, overview totals) and the fitted BTYD models."""
    from segflow.summaries import profile_table, stored_result

    profiled = 0
    for scheme in duck.schemes:
        w, g = profile_table(project.store, scheme), profile_table(view.store, scheme)
        assert (g is None) == (w is None), scheme
        if w is None:
            continue
        profiled += 1
        pd.testing.assert_frame_equal(g.table, w.table, check_dtype=False, obj=f"{scheme} profile")
        for part in ("means", "medians", "std_diff", "base"):
            pd.testing.assert_frame_equal(getattr(g, part), getattr(w, part), rtol=1e-9,
                                          check_dtype=False, obj=f"{scheme} {part}")
    assert profiled == len(duck.schemes)
    audit = duck.audit
    assert len(audit) > 10 and (audit["count"] > 0).any()
    pd.testing.assert_frame_equal(_undated(spark.audit), _undated(audit), check_dtype=False)
    names = ("clv_diagnostics", "campaigns", "forecasts", "overview")
    docs = {e: {n: stored_result(s, n) for n in names}
            for e, s in (("duckdb", project.store), ("spark", view.store))}
    for name in names:
        w, g = docs["duckdb"][name], docs["spark"][name]
        assert w is not None and g is not None, name
        assert g[0] == w[0], name  # the snapshot
        _same(g[1], w[1], name)
    assert len(docs["duckdb"]["campaigns"][1]["reports"]) >= 1
    # four months hold no customer before the diagnostics' 26-week holdout (both runs stored
    # the same error): the same document with a 6-week holdout, on each engine's tables (with
    # 8 weeks too few customers repeat: the BG/NBD fit runs to a boundary on both engines)
    from segflow.summaries._results import clv_diagnostics_document

    at = docs["duckdb"]["clv_diagnostics"][0]
    clv = [clv_diagnostics_document(s.table("transactions"), at, holdout_weeks=6)
           for s in (warehouse, project.store)]
    assert len(clv[1]["tracking"]["data"]) > 5 and clv[1]["one_time_customers"] > 0
    _same(clv[0], clv[1], "clv_diagnostics")
    saved = [json.loads(s.raw.execute("SELECT params FROM model_params").fetchone()[0])
             for s in (view.store, project.store)]
    _same(saved[0], saved[1], "model_params")


def _same(got, want, where: str = "") -> None:
    """JSON values equal, numbers to a relative 1e-6 (CLV scores: float tolerance)."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), where
        for key in want:
            _same(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _same(g, w, f"{where}[{i}]")
    elif isinstance(want, float) and not isinstance(want, bool):
        assert got == pytest.approx(want, rel=1e-6, abs=1e-9, nan_ok=True), where
    else:
        assert got == want, where


def _assert_same_dashboard(project, store) -> None:
    """``serve`` on Spark: the served copy shows the warehouse (the aggregates of its latest
    committed run, the customer-level tables, no transactions) and answers the dashboard's
    API as the DuckDB-served project does (campaigns and ``POST /api/v1/score`` included);
    tokens and roles are the DuckDB store's."""
    from fastapi.testclient import TestClient

    from segflow.server import ServerSettings, create_app
    from segflow.server._tokens import create_token

    with project.store.transaction() as con:
        tokens = {role: create_token(con, role, name=f"dashboard {role}")[0]
                  for role in ("viewer", "analyst")}
    project.store.raw.execute("CHECKPOINT")
    answers = {}
    customers = _duck(project, "SELECT DISTINCT customer_id FROM segment_assignments "
                      "ORDER BY 1 LIMIT 3")["customer_id"].tolist()
    bodies, stored_clv = _score_bodies(project)
    for engine in ("duckdb", "spark"):
        app = create_app(ServerSettings(project_dir=project.directory, allowed_hosts=["testserver"],
                                        poll_seconds=0, warm=False, engine=engine))
        with TestClient(app, base_url="https://testserver") as anon:
            assert anon.get("/api/v1/schemes").status_code == 401
            viewer = {"authorization": f"Bearer {tokens['viewer']}"}
            analyst = {"authorization": f"Bearer {tokens['analyst']}"}
            assert anon.get(f"/api/v1/customers/{customers[0]}", headers=viewer).status_code == 403
            assert anon.get("/", headers={**viewer, "accept": "text/html"}).status_code == 200
            got = {"schemes": anon.get("/api/v1/schemes", headers=viewer).json()["data"]}
            for row in got["schemes"]:
                scheme = row["scheme"]
                dates = anon.get(f"/api/v1/snapshots/{scheme}", headers=viewer).json()["data"]
                for d in dates:
                    got[f"segments {scheme} {d}"] = anon.get(
                        f"/api/v1/segments/{scheme}?snapshot={d['snapshot_date']}", headers=viewer).json()
                got[f"migration {scheme}"] = anon.get(f"/api/v1/migration/{scheme}", headers=viewer).json()
            got["campaigns"] = anon.get("/api/v1/campaigns", headers=viewer).json()
            for row in got["campaigns"]["data"]:  # on Spark: the run's stored read-outs
                r = anon.get(f"/api/v1/campaigns/{row['campaign_id']}", headers=viewer)
                got[f"campaign {row['campaign_id']}"] = r.json() if r.status_code == 200 else r.status_code
            for path in ("/api/v1/profiles/lifecycle", "/api/v1/forecasts/rfm"):  # from the copied tables
                r = anon.get(path, headers=viewer)
                got[path] = {"status": r.status_code, "body": r.json()}
            for c in customers:
                body = anon.get(f"/api/v1/customers/{c}", headers=analyst).json()
                got[f"customer {c}"] = {"data": body["data"], "scores": body["meta"]["scores"]}
            for c, body in bodies.items():  # real-time scoring: the run's saved models
                r = anon.post("/api/v1/score", headers=analyst, json=body)
                assert r.status_code == 200, (engine, r.text)
                got[f"score {c}"] = r.json()  # features (survey columns included), segments, scores
            answers[engine] = got
            if engine == "spark":  # the copy is the warehouse's: its run's aggregates, no transactions
                db = app.state.replica.current.db
                assert db.execute("SELECT DISTINCT run_id FROM summary_segments").fetchall() == \
                    [(store.committed_runs()[-1],)]
                assert db.execute("SELECT count(*) FROM transactions").fetchone()[0] == 0
    assert len(answers["duckdb"]["schemes"]) >= 5
    assert len(answers["duckdb"]) == len(answers["spark"]) > 5 + MONTHS * 5
    assert any(a["data"] for k, a in answers["duckdb"].items() if k.startswith("customer"))
    assert any(isinstance(a, dict) and a["data"] for k, a in answers["duckdb"].items()
               if k.startswith("campaign "))
    for c, clv in stored_clv.items():  # a customer's whole history posted: the stored CLV
        assert answers["duckdb"][f"score {c}"]["scores"]["clv"] == pytest.approx(clv, rel=1e-9)
    posted = [(c, a) for c, body in bodies.items() for a in body["survey_responses"]]
    assert posted, "no scored customer answered the survey: the survey columns are not compared"
    for c, a in posted:  # a posted answer lands in its question's column (the latest one wins)
        assert answers["spark"][f"score {c}"]["features"][question_column(a["question"])] is not None
    _same(answers["spark"], answers["duckdb"])


def _score_bodies(project) -> tuple[dict[str, dict], dict[str, float]]:
    """``POST /api/v1/score`` bodies of three customers with CLV scores (their transactions
    and survey answers as stored in the DuckDB store), and their stored CLV."""
    clv = _duck(project, "SELECT customer_id, value FROM customer_scores WHERE score = 'clv' "
                "AND value > 0 ORDER BY customer_id LIMIT 3")
    bodies = {}
    for cid in clv["customer_id"]:
        lines = project.store.raw.execute(
            "SELECT ts, amount, quantity, category, channel, promo_code, is_return, transaction_id, "
            "product_id FROM transactions WHERE customer_id = ? AND ts IS NOT NULL "
            "AND amount IS NOT NULL ORDER BY ts, transaction_id", [cid]).fetchall()
        bodies[cid] = {"customer_id": cid, "transactions": [
            {"ts": ts.isoformat(), "amount": amount,
             "quantity": None if qty is None or qty != qty else qty, "category": cat,
             "channel": ch, "promo_code": promo, "is_return": bool(ret), "transaction_id": tid,
             "product_id": pid}
            for ts, amount, qty, cat, ch, promo, ret, tid, pid in lines]}
        answers = project.store.raw.execute(
            "SELECT ts, question, answer FROM survey_responses WHERE customer_id = ? "
            "AND ts IS NOT NULL AND question IS NOT NULL AND trim(answer) <> '' ORDER BY ts",
            [cid]).fetchall()
        bodies[cid]["survey_responses"] = [
            {"ts": ts.isoformat(), "question": q, "answer": str(a)} for ts, q, a in answers]
    assert len(bodies) == 3
    return bodies, dict(zip(clv["customer_id"], clv["value"], strict=True))
