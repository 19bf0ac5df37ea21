"""Files with personal data in clear (any writer run with ``--pii include``, an export whose
policy keeps the personal columns) followed the umask: ``0644`` on a shared machine, readable
by every user. They are written ``0600`` now (segflow._private), with one note on stderr;
files without personal data in clear keep the umask's mode."""

from __future__ import annotations

import os
import stat

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from typer.testing import CliRunner

from segflow._csv import write_csv
from segflow.cli import app

runner = CliRunner()
NOTE = "holds personal data in clear (--pii include): written with mode 0600"


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_write_csv_and_the_export_files_are_owner_only_when_private(tmp_path, umask_022, capsys):
    """``private=True`` makes a new file and an existing 0644 file 0600 (the writers keep an
    existing file's mode when they truncate it), once noted; otherwise the umask's 0644, and
    an atomic export file too; the rows are written all the same."""
    from segflow.campaigns._targeting import export_table
    from segflow.exports._targets import write_file

    table = pa.table({"customer_id": ["ann@example.com", "C2"], "clv": [1.5, 2.0]})
    plain, clear, old = tmp_path / "plain.csv", tmp_path / "clear.csv", tmp_path / "old.csv"
    write_csv(table, plain)
    old.write_text("x\n")
    assert _mode(plain) == 0o644 and _mode(old) == 0o644
    for path in (clear, old, clear):  # the same file twice: one note
        write_csv(table, path, private=True)
        assert _mode(path) == 0o600 and pacsv.read_csv(path).equals(table)
    assert capsys.readouterr().err.count(NOTE) == 2
    for fmt in ("csv", "parquet"):
        for private, mode in ((False, 0o644), (True, 0o600)):
            path = write_file(table, tmp_path / f"exp-{private}.{fmt}", fmt, private=private)
            assert _mode(path) == mode, (fmt, private)
            assert not list(tmp_path.glob(".*.part"))  # the temporary file was renamed
            path = export_table(table, tmp_path / f"tab-{private}.{fmt}", private=private)
            assert _mode(path) == mode, (fmt, private)
    assert pq.read_table(tmp_path / "exp-True.parquet").equals(table)
    err = capsys.readouterr().err
    assert f"exp-True.parquet {NOTE}" in err and ".part" not in err


def test_cli_writers_with_pii_include_write_owner_only_files(tmp_path, umask_022):
    """`export segments`, `export audience`, the plain `export --out`, `segment --out` and
    `segment cluster --out` on a project: ``--pii include`` files are 0600, with the note;
    the default (hash) files keep 0644 and say nothing."""
    from tests.exports._store import build

    project = str(build(tmp_path / "shop"))
    runs = [
        (["export", "segments", "-p", project, "-s", "rfm", "--to"], "seg.csv"),
        (["export", "audience", "-p", project, "--segment", "rfm=Loyal", "--holdout", "0", "--to"], "aud.parquet"),
        (["export", "-p", project, "--scheme", "rfm", "--out"], "list.parquet"),
    ]
    for args, name in runs:
        for pii, mode in (("hash", 0o644), ("include", 0o600)):
            out = tmp_path / f"{pii}-{name}"
            res = runner.invoke(app, [*args, str(out), "--pii", pii])
            assert res.exit_code == 0, (args, res.output)
            assert _mode(out) == mode, (args, pii)
            assert res.stderr.count(NOTE) == (pii == "include"), (args, res.stderr)


def test_clv_score_of_a_file_is_owner_only_only_when_its_ids_are_personal(tmp_path, umask_022):
    # the file mode writes the transaction file's own ids as given: it said "holds personal
    # data in clear (--pii include)" and wrote 0600 for plain ids like c00001 too
    import numpy as np

    rng = np.random.default_rng(3)
    lines = ["customer_id,ts,amount"]
    for i in range(300):  # BG/NBD-like: rates vary across customers, some stop buying
        first = int(rng.integers(0, 180))
        end = first + int(rng.integers(1, 365 - first))
        rate = rng.gamma(0.6, 1 / 25)
        extra = min(rng.poisson(rate * (end - first)), end - first)
        days = [first, *sorted(rng.choice(np.arange(first + 1, end + 1), extra, replace=False))]
        lines += [f"c{i:05d},{np.datetime64('2023-01-01') + d},{rng.gamma(2, 15):.2f}"
                  for d in days]
    plain = tmp_path / "plain.csv"
    plain.write_text("\n".join(lines) + "\n")
    mails = tmp_path / "mails.csv"
    mails.write_text("\n".join([lines[0], *[line.replace("c", "m", 1).replace(",", "@example.com,", 1)
                                            for line in lines[1:]]]) + "\n")
    for source, mode, said in ((plain, 0o644, False), (mails, 0o600, True)):
        out = tmp_path / f"{source.stem}-scores.csv"
        res = runner.invoke(app, ["clv", "score", "-t", str(source), "--snapshot", "2024-01-01",
                                  "-o", str(out)])
        assert res.exit_code == 0, res.output
        assert _mode(out) == mode, source
        assert ("holds personal data in clear (ids of the transaction file that are e-mails or "
                "phone numbers)" in res.stderr) is said
        ids = pacsv.read_csv(out).column(0).to_pylist()
        assert len(ids) == 300 and ids[0] == ("m00000@example.com" if said else "c00000")


def test_cluster_of_a_file_is_owner_only_only_when_its_ids_are_personal(tmp_path, umask_022):
    # `segment cluster --input FILE --out` writes the file's own ids as given: owner-only,
    # with the note, only when some of them are e-mail addresses or phone numbers
    import numpy as np

    rng = np.random.default_rng(4)
    rows = rng.normal(10, 2, (120, 3))
    for prefix, mode, said in (("k", 0o644, False), ("mail", 0o600, True)):
        ids = [f"{prefix}{i:04d}" + ("@example.com" if said else "") for i in range(120)]
        source = tmp_path / f"{prefix}.csv"
        source.write_text("cust,recency,frequency,monetary\n" + "".join(
            f"{c},{a:.3f},{b:.3f},{m:.3f}\n" for c, (a, b, m) in zip(ids, rows, strict=True)))
        out = tmp_path / f"{prefix}-assignments.csv"
        res = runner.invoke(app, ["segment", "cluster", "--input", str(source), "--id-col", "cust",
                                  "--k", "3", "--bootstrap", "0", "--out", str(out)])
        assert res.exit_code == 0, res.output
        assert _mode(out) == mode, prefix
        assert ("holds personal data in clear (ids of the input file that are e-mails or phone "
                "numbers)" in res.stderr) is said
        assert sorted(pacsv.read_csv(out).column("cust").to_pylist()) == sorted(ids)


def _other_group() -> int | None:
    """A group the user may give a file other than its own (root: any), None when none."""
    if os.geteuid() == 0:
        return 1 if os.getegid() != 1 else 2
    return next((g for g in os.getgroups() if g != os.getegid()), None)


def test_a_replaced_file_keeps_its_mode_and_group(tmp_path, umask_022):
    """The exports write a temporary file renamed over the target, and `segment cluster --out
    x.parquet` DuckDB's COPY, which makes the file anew: an existing list its owner had made
    0600, or 0640 for a loader's group, became 0644 with the user's group (readable by every
    user), where the writers that truncate a file (`export --out`, `segment --out`) keep it.
    Now the replacement keeps the mode and the group; a new file follows the umask, and
    --pii include still makes 0600."""
    from tests.exports._store import build

    from segflow.exports._targets import write_file

    table = pa.table({"customer_id": ["C1", "C2"], "clv": [1.5, 2.0]})
    group = _other_group()
    for fmt in ("csv", "parquet"):
        for mode in (0o600, 0o640, 0o444):
            path = tmp_path / f"old-{mode:o}.{fmt}"
            path.write_bytes(b"")
            path.chmod(mode)
            if group is not None:
                os.chown(path, -1, group)
            write_file(table, path, fmt)
            assert _mode(path) == mode, (fmt, mode)
            assert group is None or os.stat(path).st_gid == group
        path = write_file(table, tmp_path / f"new.{fmt}", fmt)
        assert _mode(path) == 0o644 and os.stat(path).st_gid == os.getegid()
        path.chmod(0o664)
        assert _mode(write_file(table, path, fmt, private=True)) == 0o600
    assert pq.read_table(tmp_path / "old-640.parquet").equals(table)
    project = str(build(tmp_path / "shop"))
    source = tmp_path / "features.csv"
    source.write_text("cust,recency,frequency\n" + "".join(
        f"k{i:03d},{i % 7 * 3.5:.1f},{i % 5 + (i % 3) * 0.25:.2f}\n" for i in range(60)))
    runs = [["export", "segments", "-p", project, "-s", "rfm", "--to"],
            ["export", "audience", "-p", project, "--segment", "rfm=Loyal", "--holdout", "0", "--to"],
            ["segment", "cluster", "--input", str(source), "--id-col", "cust", "--k", "2",
             "--bootstrap", "0", "--out"]]
    for args in runs:
        for name in ("crm.csv", "crm.parquet"):
            out = tmp_path / f"{args[1]}-{name}"
            out.write_bytes(b"")
            out.chmod(0o600)
            res = runner.invoke(app, [*args, str(out)])
            assert res.exit_code == 0, (args, res.output)
            assert _mode(out) == 0o600 and out.stat().st_size > 0, (args, name)


def test_a_folder_as_the_target_is_one_line_and_moves_no_watermark(tmp_path):
    """`export segments --changes --to crm.csv` where crm.csv is a folder said "Is a
    directory: .crm.csv.<hex>.part -> crm.csv" (the temporary file's name); now one line
    naming the target, nothing left beside it and no export logged (the next --changes
    export is still the first, of every customer)."""
    from tests.exports._store import HISTORY, build

    project = build(tmp_path / "shop")
    (tmp_path / "crm.csv").mkdir()
    args = ["export", "segments", "-p", str(project), "-s", "rfm", "--changes", "--name", "n", "--to"]
    res = runner.invoke(app, [*args, str(tmp_path / "crm.csv")])
    assert res.exit_code == 1
    assert res.stderr.strip() == f"error: file {tmp_path / 'crm.csv'}: is a folder: give a file name ending in .csv"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crm.csv", "shop"]
    res = runner.invoke(app, [*args, str(tmp_path / "ok.csv"), "--json"])
    assert res.exit_code == 0, res.output
    assert '"since_snapshot": null' in res.stdout
    assert pacsv.read_csv(tmp_path / "ok.csv").num_rows == sum(s[2] is not None for s in HISTORY.values())


def test_a_symbolic_link_as_the_target_stays_and_its_file_is_written(tmp_path):
    """`export segments --to crm.csv`, crm.csv a link to the file a loader reads (on a share):
    the export renamed its file over the link, which became a plain file, and the file it
    pointed to kept its old rows; `segment cluster --out` (DuckDB's COPY) alike. Now the
    link stays and its file holds the new rows, with its mode, as the writers in place do."""
    from tests.exports._store import EXPECTED_S3, build

    project = build(tmp_path / "shop")
    share = tmp_path / "share"
    share.mkdir()
    source = tmp_path / "features.csv"
    source.write_text("cust,recency,frequency\n" + "".join(
        f"k{i:03d},{i % 7 * 3.5:.1f},{i % 5 + (i % 3) * 0.25:.2f}\n" for i in range(60)))
    runs = [(["export", "segments", "-p", str(project), "-s", "rfm", "--to"], "crm.csv", len(EXPECTED_S3)),
            (["segment", "cluster", "--input", str(source), "--id-col", "cust", "--k", "2",
              "--bootstrap", "0", "--out"], "clusters.parquet", 60)]
    for args, name, rows in runs:
        real, link = share / name, tmp_path / name
        real.write_text("old\n")
        real.chmod(0o640)
        link.symlink_to(real)
        res = runner.invoke(app, [*args, str(link)])
        assert res.exit_code == 0, res.output
        assert link.is_symlink() and os.readlink(link) == str(real), name
        read = pacsv.read_csv if name.endswith(".csv") else pq.read_table
        assert read(real).num_rows == rows and _mode(real) == 0o640, name
    # a link to a file not there yet: created where it points
    (tmp_path / "new.csv").symlink_to(share / "new.csv")
    res = runner.invoke(app, [*runs[0][0], str(tmp_path / "new.csv"), "--name", "n"])
    assert res.exit_code == 0 and (tmp_path / "new.csv").is_symlink()
    assert pacsv.read_csv(share / "new.csv").num_rows == len(EXPECTED_S3)
    assert not [p for p in (*tmp_path.iterdir(), *share.iterdir()) if p.name.endswith(".part")]
