"""Customer migration: transition matrices, flows, paths, Markov models, the segment-size
forecast and stability.

Migration is a query over the stored assignment history (``segment_assignments``): nothing
is recomputed to answer "who moved where, and when?". Table work runs in the engine (Ibis);
only the small matrices reach pandas.

Names are imported lazily on first use (PEP 562): the Markov models load scikit-learn only
when they are used.
"""

from __future__ import annotations

from segflow._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "GONE": "_pairs",
    "NEW": "_pairs",
    "Backtest": "_dynamics",
    "MarkovChain": "_markov",
    "Paths": "_paths",
    "SegmentForecast": "_forecast",
    "Stability": "_dynamics",
    "TransitionMatrix": "_transitions",
    "backtest": "_dynamics",
    "customer_paths": "_paths",
    "markov_clv": "_markov",
    "movers": "_paths",
    "pooled_transition_matrix": "_transitions",
    "recency_states": "_recency",
    "row_intervals": "_intervals",
    "segment_forecast": "_forecast",
    "stability": "_dynamics",
    "transition_matrix": "_transitions",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
