"""SageMaker tuning-trial entry script: `dogclf.sagemaker.training.main` in mode 'hpo' (train/valid only, no hooks)."""

import sys
from pathlib import Path

from dogclf.sagemaker.training import main

if __name__ == "__main__":
    sys.exit(main(mode="hpo", script_dir=Path(__file__).resolve().parent))
