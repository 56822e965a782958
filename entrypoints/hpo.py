"""Run dogclf's SageMaker tuning-trial entry script from a clone: `python entrypoints/hpo.py --data DIR ...`.

The script itself lives in the package (dogclf/entrypoints/hpo.py), so jobs submitted from a wheel install
ship the same file; see `python entrypoints/hpo.py --help`.
"""

import sys

from dogclf.entrypoints.hpo import main

if __name__ == "__main__":
    sys.exit(main())
