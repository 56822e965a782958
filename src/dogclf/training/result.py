"""What a finished training run produced."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dogclf.data.check import BadImage


@dataclass
class TrainResult:
    """What a finished run produced."""

    run_dir: Path
    artifact_dir: Path
    history: list[dict]
    best_epoch: int
    valid: dict[str, float]
    test: dict[str, float] | None
    bad_images: list[BadImage] = field(default_factory=list)
    unstable: list[str] = field(default_factory=list)
