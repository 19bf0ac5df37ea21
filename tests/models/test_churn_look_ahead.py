"""A churn score at a snapshot must not use labels from after it (docs/churn.md)."""

from __future__ import annotations

import datetime as dt

from segflow.models._churn_train import look_ahead_note


def test_a_model_whose_labels_end_after_the_snapshot_is_a_look_ahead():
    meta = {"model": "churn_90d", "horizon_days": 90,
            "refit_snapshots": [dt.date(2024, 1, 1), dt.date(2024, 4, 1)],
            "train_snapshots": [dt.date(2024, 1, 1)]}
    # labels of the latest training snapshot 2024-04-01: purchases up to 2024-06-30
    note = look_ahead_note(meta, dt.date(2024, 6, 1))
    assert note is not None and "2024-06-30" in note and "--data-end 2024-06-01" in note
    assert look_ahead_note(meta, dt.date(2024, 6, 30)) is None  # [s, s + 90 days) ends there
    assert look_ahead_note(meta, dt.date(2024, 7, 1)) is None
    # the saved summary (JSON) holds the dates as text
    assert look_ahead_note({**meta, "refit_snapshots": ["2024-04-01"]}, dt.date(2024, 5, 1))
    assert look_ahead_note({"horizon_days": 90}, dt.date(2024, 5, 1)) is None
