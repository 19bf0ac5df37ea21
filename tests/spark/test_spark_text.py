"""CSV files at a URL on the Spark ingest (segflow.warehouse._text): Spark reads the bytes of
every file of a folder, a task per file parses it with the DuckDB ingest's reader; the rows
and rejects carry the reader's row numbers, the files one after another in path order."""

from __future__ import annotations

import pytest
from tests._engines import require_spark

from segflow.config import SourceSettings
from segflow.errors import InputError

pytestmark = [pytest.mark.spark, pytest.mark.slow]

#: a.csv: a blank line (line 3, no row), three fields of two on line 4 (row 3, malformed);
#: b.csv: a quoted field over two lines (one record). Rows of b follow a's last row (4).
FILES = {
    "a.csv": "id,x\n1,a\n\n2,b,extra\n3,c\n",
    "b.csv": 'id,x\n4,d\n5,"e\nf"\n',
}


def test_a_folder_url_of_csv_files_is_read_with_the_readers_rows_and_rejects(tmp_path):
    require_spark()
    from segflow.engine import spark_session
    from segflow.warehouse._text import read_text

    folder = tmp_path / "in"
    folder.mkdir()
    for name, text in FILES.items():
        (folder / name).write_text(text)
    source = SourceSettings(name="s", table="customers", format="csv",
                            columns={"customer_id": "id"})
    session = spark_session("local[1]")
    url = folder.resolve().as_uri()
    read = read_text(session, source, url, url, local=False)  # the bytes through Spark
    try:
        rows = sorted(tuple(r) for r in read.rows.collect())
        rejects = [tuple(r)[:2] for r in read.rejects.collect()]
        reason = read.rejects.collect()[0].reason
        records = read.records
    finally:
        read.release()
    assert rows == [(1, "1", "a"), (4, "3", "c"), (5, "4", "d"), (6, "5", "e\nf")]
    assert rejects == [(3, "2,b,extra")] and "3 fields" in reason
    assert records == 5  # the readers' own counts: 3 records in a.csv, 2 in b.csv

    (folder / "c.csv").write_text("id,y\n7,g\n")
    with pytest.raises(InputError, match=r"c\.csv.*header \['id', 'y'\] differs"):
        read_text(session, source, url, url, local=False)



def test_headerless_whitespace_files_go_through_the_same_options(tmp_path):
    """``header = false``, ``names`` and ``delimiter = "whitespace"`` on the Spark ingest:
    the task's reader is the DuckDB ingest's, so the rows are its (row 1 is line 1)."""
    require_spark()
    from segflow.engine import spark_session
    from segflow.warehouse._text import read_text

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.txt").write_text("  1   a\n2 b extra\n")
    (folder / "b.txt").write_text("3\t c \n")
    source = SourceSettings(name="s", table="customers", format="csv",
                            columns={"customer_id": "id"},
                            options={"header": False, "names": ["id", "x"],
                                     "delimiter": "whitespace"})
    url = folder.resolve().as_uri()
    read = read_text(spark_session("local[1]"), source, url, url, local=False)
    try:
        rows = sorted(tuple(r) for r in read.rows.collect())
        rejects = [(r._row, r.raw_row, r.reason) for r in read.rejects.collect()]
        records = read.records
    finally:
        read.release()
    assert rows == [(1, "1", "a"), (3, "3", "c")]  # b.txt's line 1 follows a's 2 rows
    assert rejects == [(2, "2 b extra", "3 fields instead of the 2 of options.names")]
    assert records == 3

def test_what_spark_cannot_read_is_one_line_naming_the_cause(tmp_path):
    """A local file of 0 bytes (which Spark does not list) is no error but a read without
    rows, naming the file, as on DuckDB; a URL of a file system Spark has no client for, or
    whose server is down, gives the JVM's cause, not the name of the JVM call."""
    require_spark()
    from segflow.engine import spark_session
    from segflow.warehouse._text import read_text

    source = SourceSettings(name="s", table="customers", format="csv",
                            columns={"customer_id": "id"})
    session = spark_session("local[1]")
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    read = read_text(session, source, empty.resolve().as_uri(), "empty.csv", local=True)
    assert (read.rows, read.records, read.empty) == (None, 0, [("empty.csv", True)])
    with pytest.raises(InputError, match=r"^file .*nothing: Spark cannot read it: "):
        read_text(session, source, (tmp_path / "nothing").as_uri(), "nothing", local=False)
    with pytest.raises(InputError, match=r'Spark cannot read it: No FileSystem for scheme "nofs"$'):
        read_text(session, source, "nofs://host/x.csv", "nofs://host/x.csv", local=False)
    with pytest.raises(InputError, match=r"Spark cannot read it: Call From .* to \S+:9 "
                                         r"failed on connection exception.*refused$") as err:
        read_text(session, source, "hdfs://127.0.0.1:9/lake/x.csv", "lake", local=False)
    assert "\n" not in str(err.value) and "o" + "210" not in str(err.value)


def test_the_spark_error_line_is_the_cause_after_the_py4j_call():
    from segflow.engine._spark import spark_error_line

    py4j = ("An error occurred while calling o31.load.\n"
            ": java.net.ConnectException: Call From vm/127.0.0.1 to localhost:9000 failed on "
            "connection exception: java.net.ConnectException: Connection refused; For more "
            "details see:  http://wiki.apache.org/hadoop/ConnectionRefused\n"
            "\tat org.apache.hadoop.ipc.Client.call(Client.java:1)\n")
    assert spark_error_line(RuntimeError(py4j)) == (
        "Call From vm/127.0.0.1 to localhost:9000 failed on connection exception: "
        "java.net.ConnectException: Connection refused")
    assert spark_error_line(RuntimeError("[PATH_NOT_FOUND] Path does not exist: file:/x.\n"
                                         "more")) == "[PATH_NOT_FOUND] Path does not exist: file:/x."
    assert spark_error_line(ValueError("")) == "ValueError"
