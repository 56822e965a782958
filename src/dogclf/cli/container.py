"""The bring-your-own-container entry: `serve` as SageMaker runs it, with settings from the model's environment.

SageMaker starts the image as `docker run IMAGE serve` with model.tar.gz extracted to /opt/ml/model and
expects /ping and /invocations on port 8080 (SAGEMAKER_BIND_TO_PORT when it sets one).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

MODEL_DIR = "/opt/ml/model"
PORT = "8080"
# The handlers' settings (dogclf.serve.handlers), plus SageMaker's model-server knobs, as `dogclf serve` flags.
ENV_FLAGS = {
    "DOGCLF_BACKEND": "--backend",
    "DOGCLF_DEVICE": "--device",
    "DOGCLF_PRECISION": "--precision",
    "DOGCLF_TOPK": "--default-topk",
    "DOGCLF_MAX_PIXELS": "--max-pixels",
    "DOGCLF_MAX_IMAGES": "--max-images-per-request",
    "DOGCLF_MIN_CONFIDENCE": "--min-confidence",
    "SAGEMAKER_MODEL_SERVER_WORKERS": "--workers",
    "SAGEMAKER_MODEL_SERVER_TIMEOUT": "--timeout-s",
}
TRUE = ("1", "true", "yes")


def serve_args(env: Mapping[str, str]) -> list[str]:
    """The `dogclf serve` command line for this environment: all interfaces, SageMaker's port and model dir."""
    model_dir = env.get("DOGCLF_MODEL_DIR") or MODEL_DIR
    args = ["serve", model_dir, "--host", "0.0.0.0", "--port", env.get("SAGEMAKER_BIND_TO_PORT") or PORT]
    for name, flag in ENV_FLAGS.items():
        if env.get(name, "").strip():
            args += [flag, env[name].strip()]
    if env.get("DOGCLF_RAW_SCORES", "").strip().lower() in TRUE:
        args.append("--raw-scores")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run `dogclf serve` for SageMaker's `serve` command; any other command is an error (exit 2)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv != ["serve"]:
        print(
            f"dogclf: error: this container runs `serve` (as SageMaker does), got {' '.join(argv)!r}", file=sys.stderr
        )
        return 2
    from dogclf.cli.main import main as cli

    return cli(serve_args(os.environ))


if __name__ == "__main__":
    sys.exit(main())
