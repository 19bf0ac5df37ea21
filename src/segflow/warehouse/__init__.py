"""segflow on a Spark warehouse: the run computed on Spark from the canonical tables in the
warehouse and written back there (docs/scale.md)."""

from segflow.warehouse._ingest import ingest_on_warehouse
from segflow.warehouse._push import push_to_warehouse
from segflow.warehouse._report import aggregates_store, fill_served_copy, tables_store
from segflow.warehouse._run import run_on_warehouse, write_warehouse_aggregates

__all__ = ["aggregates_store", "fill_served_copy", "ingest_on_warehouse", "push_to_warehouse", "run_on_warehouse",
           "tables_store", "write_warehouse_aggregates"]
