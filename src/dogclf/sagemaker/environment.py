"""The SageMaker training-container environment (SM_* variables, /opt/ml paths), read without the SDK.

Every value is optional: outside SageMaker a missing variable yields None or an empty mapping, never a
KeyError. Paths follow the training toolkit: SM_INPUT_DIR (/opt/ml/input), SM_INPUT_CONFIG_DIR
(/opt/ml/input/config), SM_OUTPUT_DIR (/opt/ml/output), SM_MODEL_DIR, SM_OUTPUT_DATA_DIR and one
SM_CHANNEL_<NAME> per channel; the checkpoint folder has no variable and is `<opt/ml>/checkpoints`, and
TensorBoard files go to `<output>/tensorboard`, the container path of the job's TensorBoardOutputConfig.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dogclf.errors import DatasetError

OPT_ML = Path("/opt/ml")
# Channel names accepted for each split when the splits arrive as separate channels.
CHANNEL_SPLITS = {
    "train": ("train", "training"),
    "valid": ("valid", "validation", "val"),
    "test": ("test", "testing"),
}
# Container side of TensorBoardOutputConfig: SageMaker syncs this folder to the job's S3 path while it runs.
TENSORBOARD_DIR = OPT_ML / "output" / "tensorboard"
FAILURE_LIMIT = 1024  # SageMaker keeps the first 1024 characters of the failure reason


def _json(text: str | None, default: Any) -> Any:
    if not text:
        return default
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return default


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def _decode_value(value: Any) -> Any:
    """Framework estimators JSON-encode each value ('"0.01"'); decode when possible, keep it otherwise."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


@dataclass(frozen=True)
class SageMakerEnv:
    """What the training toolkit tells a training script; all fields optional."""

    opt_ml: Path = OPT_ML
    channels: dict[str, Path] = field(default_factory=dict)
    model_dir: Path | None = None
    output_data_dir: Path | None = None
    output_dir: Path | None = None
    input_config_dir: Path | None = None
    hosts: list[str] = field(default_factory=list)
    current_host: str | None = None
    num_gpus: int = 0
    num_cpus: int | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> SageMakerEnv:
        """Read os.environ (or `environ`); the /opt/ml root is the parent of SM_INPUT_DIR when set."""
        env = os.environ if environ is None else environ
        input_dir = _path(env.get("SM_INPUT_DIR"))
        opt_ml = input_dir.parent if input_dir else OPT_ML
        names = _json(env.get("SM_CHANNELS"), None)
        if not isinstance(names, list):
            names = [k[len("SM_CHANNEL_") :].lower() for k in env if k.startswith("SM_CHANNEL_")]
        channels = {}
        for name in names:
            value = env.get(f"SM_CHANNEL_{str(name).upper()}")
            channels[str(name)] = Path(value) if value else opt_ml / "input" / "data" / str(name)
        hosts = _json(env.get("SM_HOSTS"), [])
        return cls(
            opt_ml=opt_ml,
            channels=channels,
            model_dir=_path(env.get("SM_MODEL_DIR")),
            output_data_dir=_path(env.get("SM_OUTPUT_DATA_DIR")),
            output_dir=_path(env.get("SM_OUTPUT_DIR")) or opt_ml / "output",
            input_config_dir=_path(env.get("SM_INPUT_CONFIG_DIR")) or opt_ml / "input" / "config",
            hosts=[str(h) for h in hosts] if isinstance(hosts, list) else [],
            current_host=env.get("SM_CURRENT_HOST"),
            num_gpus=int(env.get("SM_NUM_GPUS") or 0),
            num_cpus=int(env["SM_NUM_CPUS"]) if env.get("SM_NUM_CPUS") else None,
        )

    @property
    def in_container(self) -> bool:
        """True when the training toolkit set the model directory."""
        return self.model_dir is not None

    @property
    def checkpoint_dir(self) -> Path | None:
        """`<opt/ml>/checkpoints` when it exists (SageMaker creates it when checkpoint_s3_uri is set)."""
        path = self.opt_ml / "checkpoints"
        return path if path.is_dir() else None

    @property
    def tensorboard_dir(self) -> Path | None:
        """`<output>/tensorboard` (/opt/ml/output/tensorboard) inside a training container, else None.

        The output folder must exist (SageMaker creates it), so a stray SM_MODEL_DIR never creates /opt/ml.
        """
        if not self.in_container or self.output_dir is None or not self.output_dir.is_dir():
            return None
        return self.output_dir / "tensorboard"

    def hyperparameters(self) -> dict[str, Any]:
        """hyperparameters.json without the SDK's own `sagemaker_*` entries, values JSON-decoded."""
        if self.input_config_dir is None:
            return {}
        path = self.input_config_dir / "hyperparameters.json"
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, json.JSONDecodeError) as exc:
            raise DatasetError(f"cannot read {path}: {exc}") from None
        if not isinstance(raw, dict):
            raise DatasetError(f"{path} must hold a JSON object, got {type(raw).__name__}")
        return {k: _decode_value(v) for k, v in raw.items() if not k.startswith("sagemaker_")}

    def dataset_root(self, splits: Iterable[str] = ("train", "valid", "test")) -> Path | None:
        """One folder `discover()` understands, built from the channels; None when there are none.

        One channel is used as is (it holds train/ valid/ [test/] or flat class folders); separate
        split channels (training + validation [+ test]) are joined as symlinks in a temp folder whose
        name depends only on the channel paths, so the dataset fingerprint survives a restart.
        """
        wanted = set(splits)
        if not self.channels:
            return None
        by_split = {}
        for split, aliases in CHANNEL_SPLITS.items():
            found = [name for name in aliases if name in self.channels]
            if found:
                by_split[split] = self.channels[found[0]]
        if len(self.channels) == 1 and len(by_split) <= 1:
            return split_view(next(iter(self.channels.values())), wanted)
        if "train" not in by_split or "valid" not in by_split:
            raise DatasetError(
                f"channels {sorted(self.channels)}: expected one channel with train/ valid/ [test/] folders, "
                f"or split channels named one of {CHANNEL_SPLITS['train']}, one of {CHANNEL_SPLITS['valid']} "
                f"and optionally one of {CHANNEL_SPLITS['test']}"
            )
        return _link_view({s: p for s, p in by_split.items() if s in wanted})

    def write_failure(self, message: str) -> Path | None:
        """Write the job's FailureReason to <output>/failure (first 1024 characters); None when impossible."""
        if self.output_dir is None:
            return None
        path = self.output_dir / "failure"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(message[:FAILURE_LIMIT], encoding="utf-8")
        except OSError:
            return None
        return path


def split_view(root: Path, wanted: set[str]) -> Path:
    """A channel used whole, or a view without the unwanted split folders (e.g. no test/ for tuning)."""
    present = {
        split: root / alias for split, aliases in CHANNEL_SPLITS.items() for alias in aliases if (root / alias).is_dir()
    }
    if not present or set(present) <= wanted:
        return root
    return _link_view({s: p for s, p in present.items() if s in wanted})


def _link_view(split_dirs: dict[str, Path]) -> Path:
    """A folder of symlinks train/ valid/ [test/] -> the given folders (recreated idempotently)."""
    import hashlib

    missing = [f"{s}: {p}" for s, p in split_dirs.items() if not p.is_dir()]
    if missing:
        raise DatasetError("channel folder(s) not found: " + ", ".join(missing))
    spec = json.dumps({s: str(p) for s, p in sorted(split_dirs.items())})
    key = hashlib.sha256(spec.encode()).hexdigest()[:12]
    view = Path(tempfile.gettempdir()) / f"dogclf-channels-{key}"
    view.mkdir(parents=True, exist_ok=True)
    for split, target in split_dirs.items():
        link = view / split
        if link.is_symlink() and link.resolve() == target.resolve():
            continue
        if link.is_symlink():
            link.unlink()
        link.symlink_to(target.resolve(), target_is_directory=True)
    return view
