"""SageMaker training entry script: maps SM_* variables and hyperparameter args onto dogclf and trains.

Runs unchanged in a SageMaker PyTorch training container (the estimator ships this file with the dogclf
package beside it) and locally: `python -m dogclf.entrypoints.train --data DIR --output-data-dir RUN --epochs 2`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from dogclf.sagemaker.training import main as _main


def main(argv: list[str] | None = None) -> int:
    """Train one model: the artifact goes to SM_MODEL_DIR (or --model-dir)."""
    return _main(argv, mode="train", script_dir=Path(__file__).resolve().parent)


if __name__ == "__main__":
    sys.exit(main())
