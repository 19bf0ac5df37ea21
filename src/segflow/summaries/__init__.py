"""The run's aggregates: what the report and ``serve`` read instead of customer-level tables.

:func:`write_aggregates` (called at the end of ``segflow run``) computes, from the
``segment_assignments`` table or view, the transactions and the CLV scores, and stores in one
transaction (each run replaces the previous aggregates):

``summary_segments``
    per scheme, snapshot and segment: ``customers``, ``share`` (of the scheme's customers at
    the snapshot), ``revenue_12m`` (net revenue of the segment's customers with
    ``snapshot - 365 days <= ts < snapshot``), ``revenue_share``, ``revenue_all_time`` (every
    line before the snapshot), and where CLV scores (model ``bgnbd_gg``) are stored at the
    snapshot: ``scored_customers``, ``mean_p_alive``, ``expected_purchases`` and ``clv`` (sums
    over the next 52 weeks), ``mean_clv`` (per customer of the segment), ``clv_share``.
``summary_transitions``
    per scheme and pair of snapshots (every consecutive pair, and every snapshot with the
    latest) and cell ``from_segment -> to_segment`` (``(new)``/``(gone)`` for customers at
    one side only): ``customers``, ``revenue`` (their net revenue between the two snapshots,
    ``from <= ts < to``: the revenue moved), ``revenue_12m`` (in the 365 days before ``to``)
    and ``clv`` with ``scored_customers`` (the sum of the 52-week CLV at ``to`` and the
    customers it is summed over, when scores are stored there; else null).
``summary_profiles`` / ``summary_profile_segments``
    the segment profiles at the latest features snapshot: per segment and feature the mean,
    median and standardised difference from the base; per segment its name (rule-based
    schemes: the rule's name; clusters: the suggested name) and distinguishing features.
``summary_amounts`` / ``summary_amount_periods``
    each customer's net amount per period between the revenue's boundaries (the snapshot
    dates and 365 days before them), which the revenue above reads and a new month extends
    instead of reading every transaction again (:mod:`segflow.summaries._amounts`).
``summary_audit``
    the data-quality audit of the store (:func:`segflow.quality.audit`), stored by
    :func:`store_audit` at the end of ``segflow ingest`` (every load empties it; on Spark
    :func:`segflow.warehouse._audit.store_warehouse_audit`) and by a run when it is missing;
    a run keeps a current one instead of auditing the same data again.
``summary_results``
    the model results the report shows, one JSON document each: the CLV diagnostics (the
    run's fitted BG/NBD, its matrices, a holdout refit with its tracking and decile tables),
    the campaign read-outs, the Markov forecasts and the overview's totals (see
    :mod:`segflow.summaries._results`).

Money is in the project's currency (``[project] currency``), returns netted, anonymous lines
(no customer id) left out: they belong to no segment. Every sum of money (and of CLV scores,
expected purchases, P(alive)) is exact to a millionth (:func:`segflow.features.money_sum`),
so the stored figures do not depend on the engine, its threads or the order of rows.
"""

from segflow.summaries._read import (
    audit_table,
    movement_table,
    pooled_table,
    profile_table,
    segment_table,
    summaries_run,
    transition_table,
    value_moved_table,
    value_table,
)
from segflow.summaries._results import (
    add_missing_results,
    campaign_from_document,
    campaign_scheme,
    overview_from_document,
    stored_result,
)
from segflow.summaries._revenue import revenue_at_snapshots
from segflow.summaries._write import audit_is_current, snapshot_pairs, store_audit, write_aggregates

__all__ = [
    "add_missing_results",
    "audit_is_current",
    "campaign_from_document",
    "campaign_scheme",
    "overview_from_document",
    "stored_result",
    "audit_table",
    "movement_table",
    "pooled_table",
    "profile_table",
    "revenue_at_snapshots",
    "segment_table",
    "snapshot_pairs",
    "store_audit",
    "summaries_run",
    "transition_table",
    "value_moved_table",
    "value_table",
    "write_aggregates",
]
