"""vcframe.distributed helpers that need no process group (the multi-process behaviour is tested by each
trainer's test_distributed.py)."""

from __future__ import annotations

import time

from vcframe.distributed import TrainingClock, shard_bounds


def test_training_clock_starts_from_the_checkpoint() -> None:
    fresh = TrainingClock(None)
    resumed = TrainingClock({"train_seconds": 3600.0, "step": 100})
    older = TrainingClock({"step": 100})  # checkpoints written before the clock existed count from zero
    time.sleep(0.05)
    assert 0.05 <= fresh.seconds() < 5
    assert 3600.05 <= resumed.seconds() < 3605
    assert 0.05 <= older.seconds() < 5


def test_shard_bounds_cover_the_batch_once() -> None:
    for total in (1, 5, 16):
        for world_size in (1, 2, 3):
            spans = [shard_bounds(total, rank, world_size) for rank in range(world_size)]
            covered = [index for start, stop in spans for index in range(start, stop)]
            assert covered == list(range(total)), (total, world_size, spans)
