"""SageMaker training entry script: `dogclf.sagemaker.training.main` in mode 'train' (see dogclf.entrypoints)."""

import sys
from pathlib import Path

from dogclf.sagemaker.training import main

if __name__ == "__main__":
    sys.exit(main(mode="train", script_dir=Path(__file__).resolve().parent))
