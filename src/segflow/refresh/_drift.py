"""Drift between the two latest snapshots, as alerts.

Three checks, each giving one row per thing measured (an alert when a threshold is crossed):

**Segment shares.** For every scheme, each segment's share of the assigned customers at the
latest snapshot minus its share at the one before, in percentage points. An alert at
``share_pp`` points (default 5) or more; ``critical`` at twice that. A scheme with fewer than
:data:`SHARE_MIN_CUSTOMERS` (50) assigned customers at either snapshot gives ``info`` rows
instead (one customer there moves a share by 2 points or more: a 2-customer project went
from 100 % to 50 %, two critical alerts).

**Feature shift.** The population stability index of each monitored feature between the
previous and the latest snapshot, PSI = sum_i (a_i - e_i) ln(a_i / e_i) over ten bins cut at
the previous snapshot's deciles (e_i, a_i: shares of the previous and latest customers in bin
i). A bin empty on one side would make the log infinite: its share counts as
:data:`PSI_EMPTY_BIN_SHARE` (0.0001) instead, and only an empty bin is changed so. The usual
reading (Siddiqi 2006, *Credit Risk Scorecards*, ch. 8): below 0.1 stable, 0.1-0.25 a
moderate shift (``warning``), 0.25 and above a major one (``critical``).

That reading holds for large samples only. Under no shift, PSI is about (1/N + 1/M) times a
chi-square variable with B - 1 degrees of freedom (N, M customers, B bins; Yurdakul 2018,
*Statistical Properties of Population Stability Index*, Western Michigan University), and a
chi-square approximation needs an expected count of about 5 per bin (Cochran 1954, "Some
methods for strengthening the common chi-square tests", *Biometrics* 10). Hence two
conditions before a PSI may alert, both on the ten nominal bins:

* **minimum sample**: at least :data:`PSI_MIN_PER_BIN` (5) customers per bin on each side,
  50 customers per snapshot;
* **beyond chance**: the PSI is over the level that 95 % of PSIs stay under when nothing
  shifted, (1/N + 1/M) x 16.92 (the chi-square's 95th percentile on 9 degrees of freedom):
  0.68 at 50 customers a side, 0.11 at 300, 0.03 at 1,000, so only small projects are
  concerned.

A PSI over the warning threshold that fails either gives an ``info`` row saying the sample
is too small to judge, never a warning or a critical alert. (At 45 customers a side, a PSI
of 0.25 or more happens by chance alone about 4 times in 5.)

**Model calibration on the latest period.** BG/NBD is fitted on the history before the
previous snapshot (weekly unit, as the run's CLV scores) and predicts each customer's
purchases between the previous and the latest snapshot; the alert compares the predicted
total with the actual one: ratio predicted / actual, an alert when it is off by ``calibration``
(default 20 %) or more (``critical`` at twice that).

Alerts are rows of the store table ``alerts``; :func:`read_alerts` reads them back. An alert
is recorded once while it holds unchanged: a refresh that measures again the same pair of
snapshots (new web events only, ``--force``) records only the rows that are new or whose
severity or value changed (:func:`new_alerts`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import uuid
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from segflow.errors import SegflowError

if TYPE_CHECKING:
    import ibis

    from segflow.store import Store

#: Features whose distribution is monitored (those present in the features table).
MONITORED_FEATURES = ("recency_days", "frequency", "monetary", "avg_order_value", "tenure_days")
#: Share given to a bin that no customer of one side falls in, in the PSI (avoids log(0)):
#: such a bin adds (a - 0.0001) ln(a / 0.0001), about 0.69 for a = 0.1.
PSI_EMPTY_BIN_SHARE = 1e-4
#: Customers per bin that each snapshot needs for its PSI to be judged (Cochran's rule of an
#: expected count of 5 per cell of a chi-square statistic); 50 on the ten decile bins.
PSI_MIN_PER_BIN = 5
#: Customers a scheme needs at each of the two snapshots for its segment share changes to
#: alert (the PSI's minimum sample, :data:`PSI_MIN_PER_BIN` x 10): below it one customer
#: moves a share by more than 2 points, and a change is an info row, never an alert.
SHARE_MIN_CUSTOMERS = 50
#: Share of no-shift PSIs below :func:`psi_chance_level` (a one-sided 95 % level).
PSI_CHANCE_QUANTILE = 0.95


@dataclasses.dataclass(frozen=True)
class DriftThresholds:
    """Thresholds of the drift checks.

    Attributes
    ----------
    share_pp : float
        Change of a segment's share, in percentage points, that raises an alert.
    psi_warning, psi_critical : float
        Population stability index of a feature for a warning / a critical alert.
    calibration : float
        Relative error of the predicted total purchases (|predicted / actual - 1|).
    """

    share_pp: float = 5.0
    psi_warning: float = 0.1
    psi_critical: float = 0.25
    calibration: float = 0.2


@dataclasses.dataclass
class Alert:
    """One drift measurement over its threshold."""

    kind: str  # segment_share | feature_shift | model_calibration
    subject: str
    metric: str
    value: float
    threshold: float
    severity: str  # warning | critical | info (a measurement too uncertain to alert on)
    message: str
    snapshot_date: dt.date | None = None  # the latest snapshot of the pair compared
    previous_date: dt.date | None = None  # the snapshot it is compared with


def psi(expected: np.ndarray, actual: np.ndarray, bins: int = 10, *,
        empty_share: float = PSI_EMPTY_BIN_SHARE) -> float:
    """Population stability index of ``actual`` against ``expected`` (numeric arrays).

    Bins are cut at the deciles (``bins`` quantiles) of ``expected``; repeated cut points
    are merged, so a feature with few distinct values gets fewer bins. NaNs form a bin of
    their own. A bin that holds no value of one side gets the share ``empty_share`` on that
    side (the other shares are left as they are); a bin empty on both sides adds nothing.
    The sample size is not checked here: see :func:`psi_sample_too_small`.
    """
    e = np.asarray(expected, dtype=float)
    a = np.asarray(actual, dtype=float)
    if not len(e) or not len(a):
        return float("nan")
    e_ok, a_ok = e[~np.isnan(e)], a[~np.isnan(a)]
    edges = np.unique(np.quantile(e_ok, np.linspace(0, 1, bins + 1)[1:-1])) if len(e_ok) else []
    e_counts = np.append(np.bincount(np.searchsorted(edges, e_ok, side="right"), minlength=len(edges) + 1),
                         np.isnan(e).sum())
    a_counts = np.append(np.bincount(np.searchsorted(edges, a_ok, side="right"), minlength=len(edges) + 1),
                         np.isnan(a).sum())
    es = np.where(e_counts == 0, empty_share, e_counts / len(e))
    as_ = np.where(a_counts == 0, empty_share, a_counts / len(a))
    return float(np.sum((as_ - es) * np.log(as_ / es)))


def psi_sample_too_small(n_expected: int, n_actual: int, bins: int = 10) -> bool:
    """Whether either side has fewer than :data:`PSI_MIN_PER_BIN` customers per bin.

    Below ``PSI_MIN_PER_BIN * bins`` customers (50 on ten bins) on either side, the
    chi-square reading of the PSI (module docstring) does not hold.
    """
    return min(n_expected, n_actual) < PSI_MIN_PER_BIN * bins


def psi_chance_level(n_expected: int, n_actual: int, bins: int = 10) -> float:
    """The PSI that chance alone stays under 95 % of the time when nothing shifted.

    Yurdakul (2018): under no shift, PSI ~ (1/N + 1/M) chi2(bins - 1) for N and M customers.
    """
    from scipy.stats import chi2

    return (1.0 / n_expected + 1.0 / n_actual) * float(chi2.ppf(PSI_CHANCE_QUANTILE, bins - 1))


def _too_few(few: int, row: dict[str, Any], previous: dt.date, latest: dt.date) -> str:
    """Why a segment share change of a scheme with ``few`` customers at one snapshot is no
    alert: a scheme without customers at one of them (new, or no longer assigned) has no
    share to compare, which is no small sample (one customer is not 100 points there)."""
    if few == 0:
        when = previous if row["n_before"] == 0 else latest
        return f"the scheme has no assigned customers at {when}, nothing to compare"
    return (f"sample too small to judge (at least {SHARE_MIN_CUSTOMERS} customers at each "
            f"snapshot are needed; one customer is {100 / few:.1f} points here)")


def share_alerts(store: Store, previous: dt.date, latest: dt.date,
                 thresholds: DriftThresholds) -> list[Alert]:
    """Segment share changes of every scheme between ``previous`` and ``latest``."""
    rows = store.sql(
        """
        WITH c AS (
          SELECT scheme, snapshot_date, segment, count(*) AS n
          FROM segment_assignments WHERE snapshot_date IN (?, ?) GROUP BY ALL
        ), s AS (
          SELECT *, n / sum(n) OVER (PARTITION BY scheme, snapshot_date) AS share,
                 sum(n) OVER (PARTITION BY scheme, snapshot_date) AS total FROM c
        ), t AS (
          SELECT scheme, max(total) FILTER (WHERE snapshot_date = ?) AS n_after,
                 max(total) FILTER (WHERE snapshot_date = ?) AS n_before
          FROM s GROUP BY scheme
        )
        SELECT coalesce(l.scheme, p.scheme) AS scheme, coalesce(l.segment, p.segment) AS segment,
               coalesce(p.share, 0) AS share_before, coalesce(l.share, 0) AS share_after,
               coalesce(t.n_before, 0) AS n_before, coalesce(t.n_after, 0) AS n_after
        FROM (SELECT * FROM s WHERE snapshot_date = ?) l
        FULL JOIN (SELECT * FROM s WHERE snapshot_date = ?) p
          ON l.scheme = p.scheme AND l.segment = p.segment
        LEFT JOIN t ON t.scheme = coalesce(l.scheme, p.scheme)
        ORDER BY 1, 2
        """,
        [previous, latest, latest, previous, latest, previous],
    ).to_pylist()
    alerts = []
    for r in rows:
        change = 100.0 * (r["share_after"] - r["share_before"])
        if abs(change) < thresholds.share_pp - 1e-9:  # a change exactly at the threshold counts
            continue
        few = min(r["n_before"], r["n_after"])
        if few < SHARE_MIN_CUSTOMERS:
            alerts.append(Alert(
                "segment_share", f"{r['scheme']}: {r['segment']}", "share_change_pp", change,
                thresholds.share_pp, "info",
                f"{r['scheme']} segment {r['segment']!r}: {100 * r['share_before']:.1f}% of "
                f"{r['n_before']} customers at {previous}, {100 * r['share_after']:.1f}% of "
                f"{r['n_after']} at {latest} ({change:+.1f} points): {_too_few(few, r, previous, latest)}; "
                "no alert",
                latest, previous,
            ))
        else:
            alerts.append(Alert(
                "segment_share", f"{r['scheme']}: {r['segment']}", "share_change_pp", change,
                thresholds.share_pp,
                "critical" if abs(change) >= 2 * thresholds.share_pp else "warning",
                f"{r['scheme']} segment {r['segment']!r}: {100 * r['share_before']:.1f}% of "
                f"customers at {previous}, {100 * r['share_after']:.1f}% at {latest} "
                f"({change:+.1f} points)",
                latest, previous,
            ))
    return alerts


def feature_alerts(before: pa.Table, after: pa.Table, previous: dt.date, latest: dt.date,
                   thresholds: DriftThresholds) -> list[Alert]:
    """PSI of each monitored feature between two feature tables.

    A PSI at or over ``thresholds.psi_warning`` on too few customers
    (:func:`psi_sample_too_small`) or under the chance level of the two sample sizes
    (:func:`psi_chance_level`) gives an ``info`` row saying the sample is too small to judge
    instead of an alert.
    """
    alerts = []
    n_e, n_a = before.num_rows, after.num_rows
    small = psi_sample_too_small(n_e, n_a)
    chance = psi_chance_level(n_e, n_a) if n_e and n_a else float("inf")
    for name in MONITORED_FEATURES:
        if name not in before.column_names or name not in after.column_names:
            continue
        e = before[name].cast(pa.float64()).to_numpy(zero_copy_only=False)
        a = after[name].cast(pa.float64()).to_numpy(zero_copy_only=False)
        value = psi(e, a)
        if math.isnan(value) or value < thresholds.psi_warning:
            continue
        if small or value < chance:
            why = (f"at least {PSI_MIN_PER_BIN * 10} customers on each side are needed"
                   if small else f"chance alone gives up to {chance:.3f} on so few")
            alerts.append(Alert(
                "feature_shift", name, "psi", value, thresholds.psi_warning, "info",
                f"feature {name}: population stability index {value:.3f} between {previous} and "
                f"{latest} on {n_e} and {n_a} customers: sample too small to judge ({why}); "
                "no alert",
                latest, previous,
            ))
            continue
        severity = "critical" if value >= thresholds.psi_critical else "warning"
        alerts.append(Alert(
            "feature_shift", name, "psi", value, thresholds.psi_warning, severity,
            f"feature {name}: population stability index {value:.3f} between {previous} and "
            f"{latest} ({'major' if severity == 'critical' else 'moderate'} shift)",
            latest, previous,
        ))
    return alerts


def calibration_alerts(transactions: ibis.Table, previous: dt.date, latest: dt.date,
                       thresholds: DriftThresholds) -> tuple[list[Alert], dict[str, Any]]:
    """BG/NBD fitted before ``previous``: predicted vs actual purchases up to ``latest``.

    Returns the alerts and the measurement (predicted and actual totals, ratio), or an
    empty measurement with a ``note`` when the model cannot be fitted on that history.
    """
    from segflow.models import BetaGeoModel, btyd_summary, compress
    from segflow.models._validation import validate_holdout

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            summary = btyd_summary(transactions, calibration_end=previous, observation_end=latest,
                                   time_unit="W").cache()
            triples = compress(summary)
            model = BetaGeoModel().fit(triples[triples["T"] > 0])
            metrics = validate_holdout(summary, model, time_unit="W").metrics
    except SegflowError as exc:
        return [], {"note": f"no calibration check: {exc}"}
    row = metrics.set_index("predictor").loc["model"]
    predicted, actual = float(row["predicted_total"]), float(row["actual_total"])
    measured = {"predicted_total": predicted, "actual_total": actual,
                "ratio": predicted / actual if actual else float("nan")}
    if not actual:
        return [], {**measured, "note": "no purchases in the latest period"}
    error = predicted / actual - 1.0
    if abs(error) < thresholds.calibration:
        return [], measured
    severity = "critical" if abs(error) >= 2 * thresholds.calibration else "warning"
    return [Alert(
        "model_calibration", "bgnbd", "predicted_over_actual", predicted / actual,
        thresholds.calibration, severity,
        f"BG/NBD fitted before {previous} predicted {predicted:,.0f} purchases up to {latest}; "
        f"{actual:,.0f} happened ({100 * error:+.0f}%)",
        latest, previous,
    )], measured


#: Relative difference under which a measurement equals the one recorded before (a refit of
#: the calibration model on the same data may differ in its last bits).
SAME_VALUE_RTOL = 1e-6

_COLUMNS = ("alert_id, run_id, created_at, snapshot_date, previous_snapshot_date, kind, "
            "subject, metric, value, threshold, severity, message, last_seen_run_id")


def _latest_row(con: Any, alert: Alert) -> tuple[str, str, float] | None:
    """(alert_id, severity, value) of the latest row recorded of ``alert``'s measurement:
    the same pair of snapshots (a row an older segflow wrote, without a previous snapshot:
    the same message, which names both dates), kind, subject and metric."""
    return con.execute(
        "SELECT alert_id, severity, value FROM alerts WHERE snapshot_date = ? AND kind = ? "
        "AND subject IS NOT DISTINCT FROM ? AND metric IS NOT DISTINCT FROM ? "
        "AND (previous_snapshot_date = ? OR (previous_snapshot_date IS NULL AND message = ?)) "
        "ORDER BY created_at DESC LIMIT 1",
        [alert.snapshot_date, alert.kind, alert.subject, alert.metric, alert.previous_date,
         alert.message],
    ).fetchone()


def recorded_before(con: Any, alert: Alert) -> bool:
    """Whether ``alert`` is recorded already, unchanged, on connection ``con``.

    The latest row of the same pair of snapshots, kind, subject and metric must have the same
    severity and the same value (to :data:`SAME_VALUE_RTOL`). A row an older segflow wrote
    has no previous snapshot: its message, which names both dates, must then be the same.
    """
    row = _latest_row(con, alert)
    return row is not None and row[1] == alert.severity and math.isclose(
        row[2], float(alert.value), rel_tol=SAME_VALUE_RTOL, abs_tol=1e-12)


def new_alerts(con: Any, alerts: list[Alert]) -> tuple[list[Alert], list[Alert]]:
    """``alerts`` split into those not yet recorded (or changed since) and those recorded
    before unchanged (:func:`recorded_before`), each in its order."""
    seen = [recorded_before(con, a) for a in alerts]
    return ([a for a, s in zip(alerts, seen, strict=True) if not s],
            [a for a, s in zip(alerts, seen, strict=True) if s])


def write_alerts(con: Any, alerts: list[Alert], run_id: str, now: dt.datetime) -> int:
    """Insert alerts into the ``alerts`` table on connection ``con``; returns the count.

    Every alert given is inserted: leave out those recorded before with
    :func:`new_alerts` first (and mark them :func:`seen_again`).
    """
    for a in alerts:
        con.execute(
            f"INSERT INTO alerts ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [uuid.uuid4().hex[:12], run_id, now, a.snapshot_date, a.previous_date, a.kind,
             a.subject, a.metric, float(a.value), float(a.threshold), a.severity, a.message,
             run_id],
        )
    return len(alerts)


def seen_again(con: Any, alerts: list[Alert], run_id: str) -> None:
    """Mark the rows of ``alerts``, recorded before and measured again unchanged by refresh
    ``run_id``, as seen by it (``last_seen_run_id``): they are among the alerts of that
    refresh that ``read_alerts(latest_run=True)`` lists."""
    for a in alerts:
        row = _latest_row(con, a)
        if row is not None:
            con.execute("UPDATE alerts SET last_seen_run_id = ? WHERE alert_id = ?", [run_id, row[0]])


#: ``runs.message`` of a refresh that found nothing new (and measured nothing).
NOTHING_NEW = "nothing new"

#: The refresh whose alerts ``--latest`` lists: the latest one that measured drift (not one
#: that found nothing new, not a failed one); in a store without one in its run log, the run
#: that recorded or saw the latest alert.
_LATEST_REFRESH = (
    "coalesce((SELECT run_id FROM runs WHERE command = 'refresh' AND status = 'ok' "
    f"AND message IS DISTINCT FROM '{NOTHING_NEW}' ORDER BY started_at DESC LIMIT 1), "
    "(SELECT coalesce(last_seen_run_id, run_id) FROM alerts ORDER BY created_at DESC LIMIT 1))"
)


def read_alerts(
    store: Store,
    *,
    run_id: str | None = None,
    since: dt.datetime | dt.date | None = None,
    kind: str | None = None,
    latest_run: bool = False,
) -> pa.Table:
    """Drift alerts recorded by ``segflow refresh``, newest first.

    Parameters
    ----------
    store : Store
    run_id : str, optional
        Only the alerts of this refresh.
    since : datetime or date, optional
        Only alerts created at or after it (UTC).
    kind : {"segment_share", "feature_shift", "model_calibration"}, optional
    latest_run : bool, default=False
        Only the alerts of the latest refresh that measured drift: those it recorded and
        those it measured again unchanged, recorded by an earlier one (as its summary counts
        them); none when it measured none (one snapshot only, or every measurement under its
        threshold).

    Returns
    -------
    pyarrow.Table
        ``alert_id, run_id, created_at, snapshot_date, kind, subject, metric, value,
        threshold, severity, message, previous_snapshot_date`` (null in rows an older
        segflow wrote), ``last_seen_run_id`` (the latest refresh that measured it). A refresh
        records an alert once per pair of snapshots while it is unchanged
        (:func:`new_alerts`).
    """
    where, params = ["TRUE"], []
    if run_id is not None:
        where.append("run_id = ?")
        params.append(run_id)
    if since is not None:
        where.append("created_at >= ?")
        params.append(since)
    if kind is not None:
        where.append("kind = ?")
        params.append(kind)
    if latest_run:
        where.append(f"coalesce(last_seen_run_id, run_id) = {_LATEST_REFRESH}")
    return store.sql(
        f"SELECT * FROM alerts WHERE {' AND '.join(where)} "
        "ORDER BY created_at DESC, kind, subject",
        params,
    )
