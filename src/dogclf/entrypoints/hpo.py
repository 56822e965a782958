"""SageMaker tuning-trial entry script: like train.py, but never reads the test split and runs no hooks.

Each trial prints the metric lines the tuner's metric_definitions parse (objective: valid:loss by default).
Locally: `python -m dogclf.entrypoints.hpo --data DIR --output-data-dir RUN --lr 0.01 --batch-size 20`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from dogclf.sagemaker.training import main as _main


def main(argv: list[str] | None = None) -> int:
    """Train one tuning trial on train/valid only."""
    return _main(argv, mode="hpo", script_dir=Path(__file__).resolve().parent)


if __name__ == "__main__":
    sys.exit(main())
