"""The one epoch loop: order of the work, records, best epoch, early stopping and stop requests."""

from __future__ import annotations

import torch

from dogclf.training.best import BestEpoch
from dogclf.training.epochs import run_epochs


class _Scripted:
    """Epoch work whose valid losses are given; records the calls and the seeded draw of each epoch."""

    def __init__(self, losses: list[float]) -> None:
        self.losses, self.calls, self.draws, self.improved = losses, [], [], []

    def begin_epoch(self, epoch: int) -> None:
        self.calls.append(("begin", epoch))

    def train_epoch(self, epoch: int) -> tuple[dict[str, float], list[float]]:
        self.calls.append(("train", epoch))
        self.draws.append(float(torch.rand(())))  # the loop seeds each epoch before training it
        return {"loss": 1.0}, [0.1, 0.3]

    def validate(self) -> dict[str, float]:
        self.calls.append(("valid", None))
        return {"loss": self.losses[len(self.draws) - 1], "top1": 0.5}

    def end_epoch(self, record: dict, improved: bool) -> None:
        self.calls.append(("end", record["epoch"]))
        self.improved.append(improved)


def test_epochs_run_in_order_with_records_and_stop_early():
    work, history = _Scripted([1.0, 0.8, 0.9, 0.95, 0.1]), []
    best = BestEpoch("valid_loss", patience=2)
    run_epochs(work, range(5), seed=7, best=best, history=history)
    assert [r["epoch"] for r in history] == [1, 2, 3, 4]  # epoch 5 never ran: two epochs without improvement
    assert best.best_epoch == 2 and work.improved == [True, True, False, False]
    assert work.calls[:4] == [("begin", 0), ("train", 0), ("valid", None), ("end", 1)]
    assert all(r["lr"] == 0.2 and r["seconds"] >= 0 and r["train"] == {"loss": 1.0} for r in history)
    again = _Scripted([1.0, 0.8])
    run_epochs(again, range(2), seed=7, best=BestEpoch("valid_loss"), history=[])
    assert again.draws == work.draws[:2]  # the same seed gives every epoch the same random state
    assert len(set(work.draws)) == 4


def test_a_resumed_run_starts_at_its_epoch_and_a_stop_request_ends_it():
    work, history, asked = _Scripted([0.5, 0.4, 0.3, 0.2]), [], []

    def stop() -> bool:
        asked.append(len(history))
        return len(history) == 2

    run_epochs(work, range(1, 4), seed=0, best=BestEpoch("valid_loss"), history=history, stop=stop)
    assert [r["epoch"] for r in history] == [2, 3]
    assert asked == [0, 1, 2]  # asked before every epoch, the last time it said stop
