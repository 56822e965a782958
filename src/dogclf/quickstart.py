"""The quickstart: the whole local path on a generated sample dataset, in a few minutes on a laptop CPU."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from dogclf.config import RunConfig, build_config

log = logging.getLogger("dogclf")

QUICKSTART_CONFIG = {
    "data.image_size": 64,
    "data.batch_size": 32,
    "model.arch": "resnet50",
    "model.weights": None,
    "model.freeze": "full",
    "optim.epochs": 6,
    "optim.lr": 0.002,
    "optim.warmup_epochs": 0.5,
}


@dataclass
class QuickstartResult:
    """Where everything the quickstart made lives, and its headline figures."""

    workdir: Path
    data: Path
    run: Path
    model: Path
    valid_top1: float
    test_top1: float | None
    predictions: list[tuple[str, float]] = field(default_factory=list)
    outputs: dict[str, Path] = field(default_factory=dict)


def quickstart_config(data: Path, **overrides: object) -> RunConfig:
    """The quickstart's training config (ResNet50 from scratch at 64 px)."""
    return build_config(overrides={**QUICKSTART_CONFIG, "data.root": str(data), **overrides})


def run_quickstart(
    workdir: str | Path = "quickstart", classes: int = 5, per_class: int = 60, epochs: int | None = None
) -> QuickstartResult:
    """Sample data -> train -> evaluate -> predict; returns the paths and figures it produced."""
    from dogclf.data.synthetic import make_dataset
    from dogclf.evaluation import evaluate
    from dogclf.prediction import predict
    from dogclf.training import train

    workdir = Path(workdir)
    data = workdir / "data"
    if not data.exists():
        log.info("[1/4] generating the sample dataset in %s", data)
        make_dataset(data, classes=classes, per_class=per_class, size=64)
    overrides = {"optim.epochs": epochs} if epochs else {}
    cfg = quickstart_config(data, **overrides)
    run_dir = _next_run_dir(workdir / "runs")
    log.info("[2/4] training %s into %s", cfg.model.arch, run_dir)
    result = train(cfg, run_dir)
    log.info("[3/4] evaluating the saved model on the test split")
    test = evaluate(result.artifact_dir, data, split="test")
    sample = sorted((data / "test").rglob("*.jpg"))[0]
    log.info("[4/4] predicting %s", sample)
    top = predict(result.artifact_dir, [sample], topk=3)[0]
    return QuickstartResult(
        workdir=workdir, data=data, run=run_dir, model=result.artifact_dir, valid_top1=result.valid["top1"],
        test_top1=test.top1, predictions=list(zip(top.labels, top.probabilities, strict=True)),
        outputs={"plots": run_dir / "plots", "metrics": run_dir / "metrics.jsonl", "sample_image": sample},
    )  # fmt: skip


def _next_run_dir(runs: Path) -> Path:
    """runs/quickstart-N with the first unused N, so reruns never overwrite earlier runs."""
    n = 1
    while (runs / f"quickstart-{n}").exists():
        n += 1
    return runs / f"quickstart-{n}"
