"""`segflow segment cluster` / `segment profile` on files and on a project; cluster schemes in
the pipeline."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score
from tests.pipeline._fixture import PROJECT_TOML, fixture_tables
from typer.testing import CliRunner

from segflow.cli import app
from segflow.project import Project

runner = CliRunner()


@pytest.fixture()
def customer_file(tmp_path):
    X, y = make_blobs(900, n_features=3, centers=3, cluster_std=0.8, random_state=4)
    frame = pd.DataFrame(X + 10, columns=["recency", "frequency", "monetary"])
    frame.insert(0, "cust", [f"k{i:04d}" for i in range(len(frame))])
    frame["region"] = np.where(y == 2, "urban", "rural")
    path = tmp_path / "customers.csv"
    frame.to_csv(path, index=False)
    return path, y


def _json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_cluster_file_auto_k_and_outputs(customer_file, tmp_path):
    path, truth = customer_file
    out = tmp_path / "assignments.csv"
    model = tmp_path / "model.json"
    args = ["segment", "cluster", "--input", str(path), "--id-col", "cust", "--k", "auto",
            "--k-max", "6", "--bootstrap", "5", "--out", str(out), "--save-model", str(model), "--json"]
    payload = _json(runner.invoke(app, args))
    assert payload["k"] == 3 and payload["method"] == "kprototypes"
    assert [row["k"] for row in payload["quality"]] == [2, 3, 4, 5, 6]
    assert {"silhouette", "davies_bouldin", "calinski_harabasz"} <= set(payload["quality"][0])
    assert all(seg["jaccard"] > 0.9 for seg in payload["segments"])
    assert payload["customers"] == 900 and sum(r["customers"] for r in payload["sizes"]) == 900
    written = pd.read_csv(out)
    assert list(written.columns) == ["cust", "segment", "segment_rank"]
    assert written["cust"].is_unique and len(written) == 900
    assert adjusted_rand_score(truth, written["segment_rank"]) >= 0.9
    assert json.loads(model.read_text())["method"] == "kprototypes"

    profile = _json(runner.invoke(app, [
        "segment", "profile", "--input", str(path), "--assignments", str(out), "--id-col", "cust",
        "--plots", str(tmp_path / "plots"), "--json"]))
    assert profile["count"] == 3
    sizes = written["segment"].value_counts()
    assert {r["segment"]: r["size"] for r in profile["data"]} == sizes.to_dict()
    assert (tmp_path / "plots" / "profile_heatmap.html").exists()


def test_cluster_file_errors_are_one_line(customer_file, tmp_path):
    path, _ = customer_file
    result = runner.invoke(app, ["segment", "cluster", "--input", str(path), "--id-col", "nope"])
    assert result.exit_code == 1
    assert "no id column 'nope'" in result.output and "Traceback" not in result.output
    dup = tmp_path / "dup.csv"
    pd.DataFrame({"id": ["a", "a", "b"], "x": [1.0, 2.0, 3.0]}).to_csv(dup, index=False)
    result = runner.invoke(app, ["segment", "cluster", "--input", str(dup), "--id-col", "id"])
    assert result.exit_code == 1 and "1 id repeats (first 'a', on 2 rows in all)" in result.output
    result = runner.invoke(app, ["segment", "cluster", "--input", str(path), "--id-col", "cust",
                                 "--k", "many"])
    # a usage error, as a mistyped option (README: exit status 2), in one line
    assert result.exit_code == 2 and result.output.strip() == (
        "segflow segment cluster: invalid value for '--k': 'many' is not 'auto' or a whole "
        "number of at least 1; see 'segflow segment cluster --help'")


CLUSTER_TOML = PROJECT_TOML + """
[[schemes]]
name = "behaviour"
kind = "cluster"
features = ["recency_days", "frequency", "monetary"]
k = 3
names = { "1" = "core" }

[[schemes]]
name = "presaved"
kind = "cluster"
features = ["frequency", "monetary"]
k = 4
"""


@pytest.mark.slow  # the whole pipeline over 6 snapshots (the cluster schemes add ~1 s)
def test_cluster_schemes_in_the_pipeline(tmp_path):
    folder = tmp_path / "proj"
    project = Project.init(folder, toml_text=CLUSTER_TOML)
    for name, table in fixture_tables(n_customers=120).items():
        project.store.append(name, table)
    project.close()
    # fitted interactively with k = 2 and saved: the pipeline must re-apply it, not refit k = 4
    payload = _json(runner.invoke(app, [
        "segment", "cluster", "--features", "frequency,monetary", "--k", "2", "--bootstrap", "0",
        "--save-scheme", "presaved", "--project", str(folder), "--json"]))
    assert payload["k"] == 2 and payload["features"] == ["frequency", "monetary"]
    assert payload["saved_scheme"] == "presaved"

    project = Project.open(folder)
    project.run()
    models = project.store.sql(
        "SELECT scheme, scheme_version, k FROM cluster_models ORDER BY scheme"
    ).to_pylist()
    assert models == [
        {"scheme": "behaviour", "scheme_version": "1", "k": 3},
        {"scheme": "presaved", "scheme_version": "1", "k": 2},
    ]
    rows = project.store.sql(
        "SELECT scheme, snapshot_date, segment, segment_rank FROM segment_assignments "
        "WHERE scheme IN ('behaviour', 'presaved')"
    ).to_pandas()
    behaviour = rows[rows["scheme"] == "behaviour"]
    assert behaviour["snapshot_date"].nunique() >= 2
    assert set(behaviour.loc[behaviour["segment_rank"] == 1, "segment"]) == {"core"}
    # the same rank carries the same label on every snapshot
    assert behaviour.groupby("segment_rank")["segment"].nunique().max() == 1
    assert set(rows.loc[rows["scheme"] == "presaved", "segment_rank"]) <= {1, 2}
    project.close()

    payload = _json(runner.invoke(app, [
        "segment", "profile", "--scheme", "behaviour", "--project", str(folder), "--json"]))
    assert payload["count"] >= 2 and payload["value_col"] == "monetary_12m"
    off = runner.invoke(app, ["segment", "profile", "--scheme", "behaviour", "--project", str(folder),
                              "--snapshot", "1999-12-31"])  # no snapshot: said so, not "no customer"
    assert off.exit_code == 1 and "1999-12-31 is not a snapshot of scheme 'behaviour'" in off.stderr
    small = tmp_path / "small.csv"
    pd.DataFrame({"customer_id": ["a", "b", "c"], "x": [1.0, 2.0, 9.0]}).to_csv(small, index=False)
    result = runner.invoke(app, ["segment", "cluster", "--input", str(small), "--save-scheme", "x"])
    assert result.exit_code == 1 and "cannot be used with --input" in result.output


def test_profile_reads_back_the_formula_ids_cluster_wrote(tmp_path):
    """`segment cluster --out x.csv` writes an id such as '=x' or '-1+1' as "'=x" (CSV
    injection); `segment profile --assignments x.csv` then matched no customer for them and
    left them out of the profile silently (197 of 200 customers profiled)."""
    X, _ = make_blobs(200, n_features=2, centers=2, cluster_std=0.5, random_state=1)
    frame = pd.DataFrame(X + 10, columns=["frequency", "monetary"])
    ids = [f"k{i:03d}" for i in range(len(frame))]
    ids[:3] = ['=HYPERLINK("http://e","x")', "-1+1", "@x"]
    frame.insert(0, "cust", ids)
    features, out = tmp_path / "features.csv", tmp_path / "assignments.csv"
    frame.to_csv(features, index=False)
    _json(runner.invoke(app, ["segment", "cluster", "--input", str(features), "--id-col", "cust",
                              "--k", "2", "--bootstrap", "2", "--out", str(out), "--json"]))
    written = pd.read_csv(out, dtype=str)
    assert sorted(written.cust)[:3] == ["'-1+1", "'=HYPERLINK(\"http://e\",\"x\")", "'@x"]
    args = ["segment", "profile", "--input", str(features), "--id-col", "cust", "--json"]
    profile = _json(runner.invoke(app, [*args, "--assignments", str(out)]))
    sizes = {row["segment"]: row["size"] for row in profile["data"]}
    assert sizes == written.segment.value_counts().to_dict()
    assert sum(sizes.values()) == 200
    # customers missing from the assignments file are named in a warning, not dropped silently
    written.iloc[:150].to_csv(tmp_path / "part.csv", index=False)
    result = runner.invoke(app, [*args, "--assignments", str(tmp_path / "part.csv")])
    assert result.exit_code == 0
    assert ("warning: 50 customers of the features file have no segment in the assignments "
            "file and are left out of the profile") in result.output


@pytest.mark.parametrize("role", ["cluster", "profile features", "profile assignments"])
def test_a_header_only_file_is_one_error_line(tmp_path, role):
    """A customer file with a header and no rows stopped with a TypeError traceback (the
    sum of the null ids over no rows is NULL)."""
    header = tmp_path / "header.csv"
    header.write_text("customer_id,x,segment\n")
    other = tmp_path / "other.csv"
    other.write_text("customer_id,x,segment\na,1,s1\nb,2,s2\n")
    if role == "cluster":
        args = ["segment", "cluster", "--input", str(header), "--k", "2"]
    else:
        features, assigned = (header, other) if role == "profile features" else (other, header)
        args = ["segment", "profile", "--input", str(features), "--assignments", str(assigned)]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert result.output.strip() == f"error: file {header}: the file has a header but no data rows"


def test_text_in_a_column_of_numbers_is_refused(tmp_path):
    """One 'NA' among the numbers of a CSV column made DuckDB read it as text, and the column
    was clustered as categories (k-prototypes instead of k-means) with only a warning (and
    the --json document's warnings empty): now an error naming the rows of text."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"customer_id": [f"c{i}" for i in range(60)],
                          "x": rng.normal(10, 2, 60).round(2).astype(str),
                          "y": rng.normal(5, 1, 60).round(2)})
    frame.loc[7, "x"] = "n/a"  # not a missing-value token of ingest's null_values
    path = tmp_path / "f.csv"
    frame.to_csv(path, index=False)
    result = runner.invoke(app, ["segment", "cluster", "--input", str(path), "--k", "2",
                                 "--bootstrap", "0", "--json"])
    assert result.exit_code == 1, result.output
    assert result.output.replace("\n", " ").strip() == (
        f"error: file {path}, row 8, column 'x': 59 numbers and 1 text value (first 'n/a', row "
        "8) in a column of numbers; empty those cells for missing values (or name the text in "
        "--null-values)")
    # an empty cell, or a missing-value token (NA, padded or not), keeps the column numeric:
    # no warning about text, only the count of the missing values
    for cell in ("", "NA", " null "):
        frame.loc[7, "x"] = cell
        frame.to_csv(path, index=False)
        result = runner.invoke(app, ["segment", "cluster", "--input", str(path), "--k", "2",
                                     "--bootstrap", "0", "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["method"] == "kmeans"
        assert [line for line in result.stderr.splitlines() if "warning:" in line] == [
            "warning: column 'x': 1 of 60 customers have no value (an empty cell or a "
            "missing-value token such as NA); each gets the sample median of 'x'"]


@pytest.mark.parametrize(("args", "option", "where"), [
    (["--pii", "include", "cluster"], "--pii", "give --pii after 'cluster'"),
    (["--out", "OUT", "cluster"], "--out", "give --out after 'cluster'"),
    (["--scheme", "rfm", "profile"], "--scheme", "give --scheme after 'profile'"),
    (["--engine", "duckdb", "cluster"], "--engine", "'cluster' has no such option"),
])
def test_options_of_the_assignment_before_a_sub_command_are_refused(customer_file, tmp_path, args,
                                                                    option, where):
    """`segment --pii include cluster ...` and `segment --out F cluster ...` ran `cluster` without
    them (ids keyed, no file written) and said nothing. Now one usage line names the option
    and where it goes; nothing runs and nothing is written."""
    path, _ = customer_file
    out = tmp_path / "x.csv"
    args = [str(out) if a == "OUT" else a for a in args]
    res = runner.invoke(app, ["segment", *args, "-i", str(path), "--id-col", "cust", "--k", "3",
                              "--bootstrap", "0"])
    assert res.exit_code == 2 and not out.exists()
    line = res.stderr.strip()
    assert "\n" not in line and f"{option} before '{args[-1]}'" in line and where in line
