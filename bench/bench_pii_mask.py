"""Masking personal data (``--pii mask``, the server's masked answers), old code against new.

    mkdir -p /tmp/pii-old && git archive aee858c src | tar -x -C /tmp/pii-old
    nice -n 10 python bench/bench_pii_mask.py --src /tmp/pii-old/src --label old
    nice -n 10 python bench/bench_pii_mask.py --src src --label new

One process per code tree (``--src`` goes first on ``sys.path``). It makes 1,000,000
realistic values per kind (seeded: e-mails, phone numbers in the usual national and
international forms, some with a trunk ``(0)`` or an extension, names; a few blank, missing or
no address), then times, best of ``--repeat``:

- ``column``: masking the whole column of one kind as one pyarrow array, as the exports' UDF
  is handed it (new code: :func:`segflow.exports._pii.mask_array`; old code: what its UDF
  did, ``mask_value`` of each value of ``to_pylist()``);
- ``export``: :func:`segflow.exports.personal_columns` with ``mask`` on a 1M-row table of all
  three columns, to Arrow (DuckDB, the UDF per batch, the group-by per customer); and the
  same with ``include`` (no masking: what the rest of the query takes).

Each run also prints a digest of its masked values: old and new must print the same.
Records go to ``bench/results/pii_mask.jsonl``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "pii_mask.jsonl"

FIRST = ["Jane", "John", "Ann", "Élodie", "Søren", "Zoë", "María", "Σοφία", "Li", "Mohammed", "Olga", "Ēriks"]
LAST = ["Doe", "Smith", "Martin", "Müller", "O'Brien", "García", "Nowak", "Ivanova", "Chen", "Dubois"]
DOMAINS = ["example.com", "Example.com", "mail.example.org", "exemple.fr", "example.co.uk"]


def values(n: int, seed: int = 7) -> dict[str, list[str | None]]:
    rnd = random.Random(seed)
    emails, phones, names = [], [], []
    for i in range(n):
        first, last = rnd.choice(FIRST), rnd.choice(LAST)
        r = rnd.random()
        if r < 0.01:
            emails.append(None)
        elif r < 0.02:
            emails.append(rnd.choice(["", " ", "n/a", f"{first.lower()}.{last.lower()}", "@example.com"]))
        else:
            e = f"{first.lower()}.{last.lower()}{i % 997}@{rnd.choice(DOMAINS)}"
            emails.append(f" {e} " if r < 0.05 else e)
        d = f"{rnd.randrange(10**9, 10**10)}"
        r = rnd.random()
        if r < 0.01:
            phones.append(None)
        elif r < 0.02:
            phones.append(rnd.choice(["", "n/a", "555", "\u00a0"]))
        elif r < 0.30:
            phones.append(f"+44 {d[:2]} {d[2:6]} {d[6:]}")
        elif r < 0.50:
            phones.append(f"0{d[:2]}-{d[2:6]}-{d[6:]}")
        elif r < 0.60:
            phones.append(f"0044 (0){d[:2]} {d[2:6]} {d[6:]} ext. {rnd.randrange(1, 999)}")
        elif r < 0.80:
            phones.append(f"+1 ({d[:3]}) {d[3:6]}-{d[6:]}")
        else:
            phones.append(f"07{d}")
        r = rnd.random()
        names.append(None if r < 0.01 else "" if r < 0.02 else f" {first} {last}" if r < 0.05 else f"{first} {last}")
    return {"email": emails, "phone": phones, "name": names}


def best(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def digest(items: list) -> str:
    return hashlib.sha256(json.dumps(items, ensure_ascii=False).encode()).hexdigest()[:16]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", required=True, help="the code tree's src directory")
    ap.add_argument("--label", required=True)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    sys.path.insert(0, str(Path(args.src).resolve()))

    import ibis
    import pyarrow as pa

    from segflow.exports import _pii
    from segflow.exports._pii import personal_columns

    assert Path(_pii.__file__).resolve().is_relative_to(Path(args.src).resolve()), _pii.__file__
    data = values(args.rows)
    if hasattr(_pii, "mask_array"):
        def column(kind: str, arr: pa.Array) -> pa.Array:
            return _pii.mask_array(kind, arr)
    else:  # the old UDF's body
        def column(kind: str, arr: pa.Array) -> pa.Array:
            return pa.array([None if v is None else _pii.mask_value(kind, v) for v in arr.to_pylist()], pa.string())

    record = {"label": args.label, "src": args.src, "rows": args.rows, "load_before": os.getloadavg()[0]}
    for kind, vals in data.items():
        arr = pa.array(vals, pa.string())
        seconds, out = best(lambda a=arr, k=kind: column(k, a), args.repeat)
        record[f"column_{kind}_s"] = round(seconds, 3)
        record[f"digest_{kind}"] = digest(out.to_pylist())
        print(f"{args.label} column {kind}: {seconds:.3f} s  digest {record[f'digest_{kind}']}", flush=True)

    table = ibis.memtable(pa.table({"customer_id": pa.array([f"C{i}" for i in range(args.rows)]),
                                    **{k: pa.array(v, pa.string()) for k, v in data.items()}}))
    seconds, out = best(lambda: personal_columns(table, "mask").to_pyarrow().sort_by("customer_id"), args.repeat)
    record["export_s"] = round(seconds, 3)
    record["digest_export"] = digest([out.column(c).to_pylist() for c in ("email", "phone", "name")])
    print(f"{args.label} export (3 columns): {seconds:.3f} s  digest {record['digest_export']}", flush=True)
    seconds, _ = best(lambda: personal_columns(table, "include").to_pyarrow(), args.repeat)
    record["export_include_s"] = round(seconds, 3)
    record["load_after"] = os.getloadavg()[0]
    print(f"{args.label} the same with include (no masking): {seconds:.3f} s", flush=True)
    RESULTS.parent.mkdir(exist_ok=True)
    with RESULTS.open("a") as f:
        f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
