"""``segflow segment cluster`` on plain files: option ranges (usage errors, exit status 2),
missing-value tokens, features that do not vary and repeated column names."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from segflow.cli import app

runner = CliRunner()


@pytest.fixture
def small_file(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("customer_id,x,y\n" + "".join(f"C{i},{i % 5},{i * 7 % 11}\n" for i in range(30)))
    return path


@pytest.mark.parametrize(("args", "message"), [
    (["--sample-size", "-5"], "invalid value for '--sample-size': Input should be greater than or equal to 2"),
    (["--sample-size", "0"], "invalid value for '--sample-size': Input should be greater than or equal to 2"),
    (["--k-min", "0"], "invalid value for '--k-min': Input should be greater than or equal to 1"),
    (["--bootstrap", "-3"], "invalid value for '--bootstrap': Input should be greater than or equal to 0"),
    (["--k-min", "5", "--k-max", "3"], "invalid value for '--k-min': 5 is above --k-max 3"),
    (["--features", "x,x"], "invalid value for '--features': 'x' named more than once"),
])
def test_bad_options_are_usage_errors(small_file, args, message):
    """A negative sample size (a DuckDB traceback), a feature named twice (an Ibis
    traceback), --k-min 0 (an internal 'k_range' error, exit 1) and --bootstrap -3
    (accepted) are usage errors in one line, exit status 2."""
    result = runner.invoke(app, ["segment", "cluster", "-i", str(small_file), *args])
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (f"segflow segment cluster: {message}; "
                                     "see 'segflow segment cluster --help'")


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_a_repeated_column_name_is_refused(tmp_path, kind):
    """A header 'customer_id,x,x' was read as x and x_1 and clustered on both; ingest
    refuses it. Every customer file (cluster, profile, campaign) refuses it the same way."""
    path = tmp_path / f"dup.{kind}"
    if kind == "csv":
        path.write_text("customer_id,x,X\nC1,1,2\nC2,3,4\nC3,5,1\n")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table([["C1", "C2", "C3"], [1, 3, 5], [2, 4, 1]],
                                names=["customer_id", "x", "X"]), path)
    message = (f"error: file {path}, header: column names repeat: 'x' / 'X' (names are "
               "compared ignoring case); rename or drop the extra column")
    for args in (["segment", "cluster", "-i", str(path)],
                 ["campaign", "effect", "--responses", str(path), "--outcome", "x"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1, result.output
        assert result.output.strip() == message


@pytest.mark.parametrize("kind", ["csv", "parquet", "xlsx"])
def test_names_differing_only_by_spaces_are_one_repeated_name(tmp_path, kind):
    """'spend' and 'spend ' were two columns: DuckDB trims a CSV header and read the second
    as 'spend_1', a Parquet file kept both, and both were clustered. Ingest trims its header
    and then refuses the repeat; every file command (cluster, campaign) now does the same."""
    import pandas as pd

    path = tmp_path / f"pad.{kind}"
    frame = pd.DataFrame({"customer_id": ["C1", "C2", "C3"], "spend": [1, 3, 5],
                          "spend ": [2, 4, 1]})
    {"csv": lambda: frame.to_csv(path, index=False), "parquet": lambda: frame.to_parquet(path),
     "xlsx": lambda: frame.to_excel(path, index=False)}[kind]()
    message = (f"error: file {path}, header: column names repeat: 'spend' / 'spend ' (names "
               "are compared ignoring case and surrounding spaces); rename or drop the extra "
               "column")
    commands = [["segment", "cluster", "-i", str(path)]]
    if kind != "xlsx":
        commands.append(["campaign", "effect", "--responses", str(path), "--outcome", "spend"])
    for args in commands:
        result = runner.invoke(app, args)
        assert result.exit_code == 1, result.output
        assert result.output.strip() == message


def test_padded_names_are_read_trimmed(tmp_path):
    """A Parquet column ' y ' is column 'y', as DuckDB reads a CSV header (and ingest)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "padded.parquet"
    pq.write_table(pa.table({"customer_id": [f"C{i}" for i in range(12)],
                             " y ": [float(i % 4) for i in range(12)]}), path)
    result = runner.invoke(app, ["segment", "cluster", "-i", str(path), "--features", "y",
                                 "--k", "2", "--bootstrap", "0", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout[result.stdout.index("{"):])["features"] == ["y"]


def test_features_that_do_not_vary_are_no_segments(tmp_path):
    """50 identical customers gave k = 2 with an empty segment ('typical customers (2) 0');
    now they are an error, and auto k never tries more segments than distinct customers."""
    path = tmp_path / "same.csv"
    path.write_text("customer_id,recency,frequency,monetary\n"
                    + "".join(f"C{i},10,2,50\n" for i in range(50)))
    result = runner.invoke(app, ["segment", "cluster", "-i", str(path)])
    assert result.exit_code == 1
    assert result.output.strip() == (  # the library's error names the file it was run on
        f"error: file {path}: the features do not vary: all 50 customers have the same values, "
        "so there is nothing to cluster; choose features that differ between customers")
    path.write_text("customer_id,recency,frequency,monetary\n"
                    + "".join(f"C{i},{i % 2},2,50\n" for i in range(50)))
    result = runner.invoke(app, ["segment", "cluster", "-i", str(path), "--bootstrap", "0",
                                 "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert [q["k"] for q in summary["quality"]] == [2] and summary["k"] == 2
    assert [s["customers"] for s in summary["sizes"]] == [25, 25]
    result = runner.invoke(app, ["segment", "cluster", "-i", str(path), "--k", "3"])
    assert result.exit_code == 1
    assert result.output.strip() == (f"error: file {path}: k=3 segments cannot be fitted: the "
                                     "50 customers have only 2 distinct combinations of the "
                                     "features")


def test_choose_k_never_chooses_an_empty_segment():
    """With min_share 0 (or every k below it) a k whose smallest segment is empty won."""
    import pandas as pd

    from segflow.segments._cluster import choose_k

    quality = pd.DataFrame(
        {"k": [2, 3, 4], "silhouette": [0.5, 0.7, 0.6], "davies_bouldin": [0.9, 0.5, 0.6],
         "calinski_harabasz": [100.0, 300.0, 200.0], "min_share": [0.01, 0.0, 0.01]})
    assert choose_k(quality, 0.0) == 4
    assert choose_k(quality, 0.05) == 4  # every k below min_share: still not the empty one
