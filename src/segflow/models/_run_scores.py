"""The CLV stage of a run: BG/NBD and Gamma-Gamma fitted at the latest snapshot, every
customer scored (``segflow.pipeline.run_pipeline`` and the Spark run call it)."""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Callable

import ibis

from segflow.errors import SegflowError
from segflow.models._btyd_state import BTYDStates
from segflow.models._summary import warn_exclusions
from segflow.store import Store

#: Settings of the CLV scores written by a run (see docs/models.md).
CLV_MODEL = "bgnbd_gg"
CLV_HORIZON_WEEKS = 52.0
CLV_ANNUAL_DISCOUNT_RATE = 0.1
#: Up to this many transaction lines, the run's purchase days (one row per customer and
#: day) are materialised once: on the store, read by the BTYD states computed from all
#: history (states and repeat days); on another engine, shared by the CLV summary, its
#: warnings and the CLV diagnostics. Above it each reads the lines again (bounded memory at
#: 10M customers).
SHARED_DAYS_MAX_LINES = 40_000_000


def score_clv(
    store: Store,
    transactions: ibis.Table,
    snapshot: dt.date,
    run_id: str,
    *,
    notes: list[str] | None = None,
    sink: Callable[[ibis.Table, str], int] | None = None,
    keep: dict[str, object] | None = None,
    carried_from: dt.date | None = None,
) -> int:
    """Fit BG/NBD and Gamma-Gamma on all history before ``snapshot`` (weekly time unit) and
    write each customer's P(alive), expected purchases and 52-week revenue CLV (10 % a year
    discount, margin 1) into ``customer_scores`` under model ``bgnbd_gg``.

    A base that cannot identify the count model (e.g. no repeat buyers) writes no scores; a
    spend model that cannot be fitted leaves out only ``expected_spend`` and ``clv``. The
    reason is added to ``notes`` and warned, the run itself goes on. Customers the models
    leave out of their fits (T = 0, non-positive mean spend) are counted in notes and scored.

    ``sink(scores, model_document)``, when given, stores the scores (an Ibis table on the
    engine of ``transactions``) and returns the rows written, in place of ``store``
    (``segflow.warehouse`` writes them to the Spark warehouse this way).

    ``keep``, when given, receives ``keep["btyd_triples"] = (snapshot, triples)``: the
    distinct (x, t_x, T) of the summary with their ``count`` (:func:`segflow.models.compress`),
    which the CLV diagnostics read too (``write_aggregates(clv_triples=...)``); and, when the
    purchase days were shared (see :data:`SHARED_DAYS_MAX_LINES`), ``keep["purchase_days"]``:
    the cached :func:`segflow.models.purchase_days` of every day (``end=None``), which the
    caller releases after the diagnostics read them (``write_aggregates(clv_days=...)``).
    Without ``keep`` nothing is shared.

    On the store's own DuckDB (``transactions`` of ``store``) with ``keep``, the summary
    comes from the BTYD state (:mod:`segflow.models._btyd_state`), stored for the next run
    and kept as ``keep["btyd_states"]`` (the caller releases it; the diagnostics read it):
    carried from the stored state at ``carried_from`` when the caller says that no input
    before ``carried_from`` changed since that state was written (a run computing one new
    snapshot after it) and the store holds it; else from every purchase day.
    """
    from segflow.models import (
        BetaGeoModel,
        btyd_summary,
        compress,
        fit_spend_model,
        model_document,
        purchase_days,
        save_model_params,
        score_customers,
        write_scores,
    )

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            states = _btyd_states(store, transactions, snapshot, carried_from) \
                if keep is not None else None
            if states is not None:
                keep["btyd_states"] = states
                warn_exclusions(states.exclusion_counts(snapshot), snapshot)
                summary = states.summary(snapshot, time_unit="W").cache()
            else:
                days = None
                if keep is not None and int(transactions.count().execute()) <= SHARED_DAYS_MAX_LINES:
                    # one grouping of the lines by customer and day, read by the summary, its
                    # warnings and the diagnostics' holdout summary and tracking curves
                    days = keep["purchase_days"] = purchase_days(transactions, end=None).cache()
                summary = btyd_summary(transactions, calibration_end=snapshot, time_unit="W",
                                       days=days).cache()
            triples = compress(summary)
            if keep is not None:
                keep["btyd_triples"] = (snapshot, triples)
            model = BetaGeoModel().fit(triples)
            if getattr(model, "n_zero_T_", 0):
                n = model.n_zero_T_
                who = f"{n} customers" if n != 1 else "1 customer"
                warnings.warn(f"CLV: {who} with a first purchase on the last day before the "
                              "snapshot: left out of the fit, scored as new", UserWarning,
                              stacklevel=2)
            try:
                spend, spend_notes = fit_spend_model(compress(summary, ("x", "monetary_value")))
                for note in spend_notes:
                    warnings.warn(f"CLV: {note}", UserWarning, stacklevel=2)
            except SegflowError as exc:
                spend = None
                warnings.warn(f"no expected spend or CLV at {snapshot} (P(alive) and expected "
                              f"purchases are written): {exc}", UserWarning, stacklevel=2)
            scores = score_customers(
                summary, model, horizon=CLV_HORIZON_WEEKS, time_unit="W", spend_model=spend,
                annual_discount_rate=CLV_ANNUAL_DISCOUNT_RATE,
            )
            document = model_document(
                model, spend, horizon=CLV_HORIZON_WEEKS, time_unit="W",
                annual_discount_rate=CLV_ANNUAL_DISCOUNT_RATE,
            )
            if sink is not None:
                n = sink(scores, document)
            else:
                n = write_scores(store, scores, snapshot_date=snapshot, model=CLV_MODEL,
                                 run_id=run_id)
                # the fitted parameters, so real-time scoring applies the same models (V8)
                save_model_params(store, document, snapshot_date=snapshot, model=CLV_MODEL,
                                  run_id=run_id)
        except SegflowError as exc:
            message = f"CLV stage did not run: no CLV scores at {snapshot}: {exc}"
            warnings.warn(message, UserWarning, stacklevel=2)
            if notes is not None:
                notes.append(message)
            return 0
    if notes is not None:
        notes.extend(str(w.message) for w in caught if issubclass(w.category, UserWarning))
    return n


def _btyd_states(store: Store | None, transactions: ibis.Table, snapshot: dt.date,
                 carried_from: dt.date | None) -> BTYDStates | None:
    """The BTYD states at ``snapshot`` (carried, else from all history), written to the
    store; None when ``transactions`` are not on the store's DuckDB (Spark)."""
    from segflow.models._btyd_state import (
        advanced_states,
        drop_states,
        full_states,
        stored_states,
        write_states,
    )
    from segflow.models._summary import purchase_days

    if store is None or transactions._find_backend() is not store.con:
        return None
    try:
        prior = None if carried_from is None else stored_states(store, transactions, carried_from)
        if prior is not None:
            states = advanced_states(prior, transactions, snapshot)
        else:
            days = purchase_days(transactions, end=None)
            # one grouping of the lines by customer and day read twice (states, repeat days)
            shared = int(transactions.count().execute()) <= SHARED_DAYS_MAX_LINES
            days = days.cache() if shared else days
            try:
                states = full_states(days, snapshot)
            finally:
                if shared:
                    days.release()
        write_states(store, states)
    except BaseException:
        drop_states(store)  # a stale state must not be carried by the next run
        raise
    return states
