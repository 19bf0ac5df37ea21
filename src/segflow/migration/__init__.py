"""Customer migration: transition matrices, flows, paths, Markov models and stability.

Migration is a query over the stored assignment history (``segment_assignments``): nothing
is recomputed to answer "who moved where, and when?". Table work runs in the engine (Ibis);
only the small matrices reach pandas.
"""

from segflow.migration._intervals import row_intervals
from segflow.migration._pairs import GONE, NEW
from segflow.migration._transitions import (
    TransitionMatrix,
    pooled_transition_matrix,
    transition_matrix,
)

__all__ = [
    "GONE",
    "NEW",
    "TransitionMatrix",
    "pooled_transition_matrix",
    "row_intervals",
    "transition_matrix",
]
