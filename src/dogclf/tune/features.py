"""Feature cache: frozen-backbone features computed once per image and split, reused by every trial.

An entry lives in `<root>/<key>/` where the key hashes the model, its weights, the preprocessing, the
runtime numerics and the dataset fingerprint; `meta.json` repeats the key's parts and is checked on every
load, so a cache that no longer matches is rebuilt, never reused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dogclf.config import RunConfig
from dogclf.fsutil import atomic_write_text, file_sha256

if TYPE_CHECKING:
    import torch

    from dogclf.data.discovery import DatasetLayout
    from dogclf.runtime import Runtime

log = logging.getLogger("dogclf")

FORMAT = 2  # 2: features come from the folded inference model (dogclf.training.forward.folded_backbone)
SPLITS = ("train", "valid")  # the test split is never needed to tune


@dataclass(frozen=True)
class SplitFeatures:
    """Backbone outputs (the classifier's inputs) and labels of one split, in discovery order."""

    features: torch.Tensor
    labels: torch.Tensor


@dataclass(frozen=True)
class CachedFeatures:
    """One cache entry: features of the train and valid splits."""

    path: Path
    key: str
    splits: dict[str, SplitFeatures]
    built: bool  # True when this call computed the features


def unavailable_reason(cfg: RunConfig) -> str | None:
    """Why trials of `cfg` cannot train from cached features (None when they can).

    The Trainer's own frozen-backbone decision first, then what fixed features cannot give: fresh augmentation
    every epoch, or hooks that must watch the model's layers.
    """
    from dogclf.training.forward import frozen_backbone_reason

    reason = frozen_backbone_reason(None, cfg)
    if reason is not None:
        return reason
    if cfg.data.augment:
        return "data.augment is on, so backbone inputs change every epoch (pass --augment false)"
    if cfg.debug.enabled or cfg.debug.live_rules or cfg.profile.enabled:
        return "debug/profile hooks need the full trainer"
    return None


def _weights_identity(cfg: RunConfig) -> str:
    """The backbone weights: torchvision's weight name, a file's content hash, or seeded random init."""
    weights = cfg.model.weights
    if weights is None:
        return f"random-init seed={cfg.runtime.seed}"
    if weights.lower() == "imagenet":
        from dogclf.models import get_spec

        spec = get_spec(cfg.model.arch)
        return f"imagenet {spec.imagenet_weights()}" if spec.imagenet_weights else "imagenet"
    path = Path(weights)
    if not path.is_file():
        return f"file {path} (missing)"
    return f"file sha256={file_sha256(path)}"


def cache_key(cfg: RunConfig, fingerprint: str, runtime: Runtime) -> dict[str, Any]:
    """Everything the cached features depend on."""
    import torch

    from dogclf.data.preprocess import Preprocess

    return {
        "format": FORMAT,
        "arch": cfg.model.arch,
        "weights": _weights_identity(cfg),
        "preprocess": Preprocess.for_size(cfg.data.image_size, cfg.data.resize_size).model_dump(mode="json"),
        "dataset": fingerprint,
        "device": runtime.device.type,
        "precision": runtime.precision,
        "channels_last": runtime.channels_last,
        "torch": torch.__version__,
    }


def _digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


class FeatureCache:
    """Content-addressed feature store under `root` (safe to share between studies and processes)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def get(self, cfg: RunConfig, layout: DatasetLayout, fingerprint: str, runtime: Runtime) -> CachedFeatures:
        """Load the entry for `cfg`, building (or rebuilding) it when missing or not matching."""
        key = cache_key(cfg, fingerprint, runtime)
        digest = _digest(key)
        path = self.root / digest
        if path.exists():
            problem = self._mismatch(path, key, layout)
            if problem is None:
                return CachedFeatures(path, digest, self._load(path), built=False)
            log.warning("feature cache %s does not match (%s); rebuilding it", path, problem)
            shutil.rmtree(path, ignore_errors=True)
        splits = extract_features(cfg, layout, runtime)
        self._store(path, key, splits)
        return CachedFeatures(path, digest, splits, built=True)

    def _mismatch(self, path: Path, key: dict[str, Any], layout: DatasetLayout) -> str | None:
        """Why the stored entry cannot be used, or None."""
        try:
            meta = json.loads((path / "meta.json").read_text())
        except (OSError, ValueError) as exc:
            return f"unreadable meta.json: {exc}"
        if meta.get("key") != key:
            return "its key differs from this run's model/weights/preprocessing/dataset"
        expected = {s: len(layout.splits.get(s, [])) for s in SPLITS}
        if meta.get("counts") != expected:
            return f"image counts {meta.get('counts')} != {expected}"
        if any(not (path / f"{s}.pt").is_file() for s in SPLITS):
            return "feature files are missing"
        return None

    @staticmethod
    def _load(path: Path) -> dict[str, SplitFeatures]:
        import torch

        out = {}
        for split in SPLITS:
            state = torch.load(path / f"{split}.pt", map_location="cpu", weights_only=True)
            out[split] = SplitFeatures(state["features"], state["labels"])
        return out

    def _store(self, path: Path, key: dict[str, Any], splits: dict[str, SplitFeatures]) -> None:
        """Write into a temp folder and rename it into place, so readers never see half an entry."""
        import torch

        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=self.root))
        try:
            for split, f in splits.items():
                torch.save({"features": f.features, "labels": f.labels}, tmp / f"{split}.pt")
            first = splits[SPLITS[0]].features
            counts = {s: len(f.labels) for s, f in splits.items()}
            dtype = str(first.dtype).removeprefix("torch.")
            meta = {"key": key, "counts": counts, "feature_dim": int(first.shape[1]), "dtype": dtype}
            atomic_write_text(tmp / "meta.json", json.dumps(meta, indent=2))
            try:
                tmp.rename(path)
            except OSError:  # another process stored the same entry first
                if not path.exists():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def feature_extractor(cfg: RunConfig, num_classes: int, runtime: Runtime) -> torch.nn.Module:
    """The trainer's model for `cfg` (same seed, same weights) with its classifier replaced by Identity."""
    from torch import nn

    from dogclf.models import create_model, get_spec, set_head
    from dogclf.runtime import seed_everything

    seed_everything(cfg.runtime.seed)  # a random-init backbone must equal the one the trainer builds
    model = create_model(cfg.model.arch, num_classes, cfg.model.weights, "backbone", cfg.model.dropout)
    set_head(model, get_spec(cfg.model.arch).head, nn.Identity())
    return runtime.prepare_model(model).eval()


def extract_features(cfg: RunConfig, layout: DatasetLayout, runtime: Runtime) -> dict[str, SplitFeatures]:
    """Run the frozen backbone once over the train and valid images with the eval transform.

    The backbone is the one the Trainer's frozen forward runs (folded_backbone: batch norms folded, bf16
    weights cast once), and features are stored in the runtime's reduced precision when it has one.
    """
    import time

    import torch

    from dogclf.data.dataset import ImageDataset, default_workers, make_loader
    from dogclf.data.preprocess import Preprocess, eval_transform
    from dogclf.training.forward import folded_backbone

    backbone = folded_backbone(feature_extractor(cfg, len(layout.class_folders), runtime), cfg.model.arch, runtime)
    dtype = runtime.autocast_dtype or torch.float32
    pre = Preprocess.for_size(cfg.data.image_size, cfg.data.resize_size)
    transform, decode = eval_transform(pre), pre.decode_options(cfg.data.max_image_pixels)
    batch = cfg.data.eval_batch_size or 2 * cfg.data.batch_size
    workers = default_workers(cfg.data.num_workers)
    out, started = {}, time.perf_counter()
    with torch.inference_mode():
        for split in SPLITS:
            loader = make_loader(ImageDataset(layout.splits[split], transform, decode), batch, False, workers, 0)
            feats, labels = [], []
            for images, targets in loader:
                with runtime.autocast():
                    feats.append(backbone(runtime.to_input(images)).float().cpu().to(dtype))
                labels.append(targets)
            out[split] = SplitFeatures(torch.cat(feats), torch.cat(labels))
    n = sum(len(f.labels) for f in out.values())
    log.info("feature cache: %d images through %s in %.1f s", n, cfg.model.arch, time.perf_counter() - started)
    return out
