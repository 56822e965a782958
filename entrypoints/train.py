"""Run dogclf's SageMaker training entry script from a clone: `python entrypoints/train.py --data DIR ...`.

The script itself lives in the package (dogclf/entrypoints/train.py), so jobs submitted from a wheel install
ship the same file; see `python entrypoints/train.py --help`.
"""

import sys

from dogclf.entrypoints.train import main

if __name__ == "__main__":
    sys.exit(main())
