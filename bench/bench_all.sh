#!/bin/sh
# Every issue-10/16 figure of bench_run.py and bench_spark.py, on the checkout this script is in
# (run `git merge main` first to measure main), tagged $TAG (default "after"); then the tables,
# docs/benchmarks.md and the scaling plot. The data sets are built once by bench_data.py.
#     PY=/path/to/python TAG=after sh bench/bench_all.sh [quick]
# "quick" measures only run-vs-baseline at 400k and 1M and the new-month run.
set -e
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src"
PY=${PY:-python}
TAG=${TAG:-after}
nice -n 15 "$PY" bench/bench_data.py
"$PY" bench/bench_run.py compare --sets 400k,1m --tag "$TAG"
"$PY" bench/bench_run.py newmonth --sets 1m --tag "$TAG"
if [ "$1" != "quick" ]; then
    "$PY" bench/bench_run.py job --sets 100k,200k --tag "$TAG"
    "$PY" bench/bench_run.py job --sets 10m --tag "$TAG" --memory-limit 8GB
    "$PY" bench/bench_spark.py --sets tx1m,tx10m --tag "$TAG"
fi
# the scaling curve from this run's figures and the data sets; the other marked sections hold
# hand-written readings that a full render would replace by the bare before / after tables
"$PY" bench/bench_run.py render --scaling-tags "$TAG" --render-only scaling,data
