"""Customer migration: transition matrices, flows, paths, Markov models and stability.

Migration is a query over the stored assignment history (``segment_assignments``): nothing
is recomputed to answer "who moved where, and when?". Table work runs in the engine (Ibis);
only the small matrices reach pandas.
"""

from segflow.migration._dynamics import Backtest, Stability, backtest, stability
from segflow.migration._intervals import row_intervals
from segflow.migration._markov import MarkovChain, markov_clv
from segflow.migration._pairs import GONE, NEW
from segflow.migration._paths import Paths, customer_paths, movers
from segflow.migration._recency import recency_states
from segflow.migration._transitions import (
    TransitionMatrix,
    pooled_transition_matrix,
    transition_matrix,
)

__all__ = [
    "GONE",
    "NEW",
    "Backtest",
    "MarkovChain",
    "Paths",
    "Stability",
    "TransitionMatrix",
    "backtest",
    "customer_paths",
    "markov_clv",
    "movers",
    "pooled_transition_matrix",
    "recency_states",
    "row_intervals",
    "stability",
    "transition_matrix",
]
