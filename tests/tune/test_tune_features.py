"""Feature cache: reused when everything matches, rebuilt when preprocessing, data or the entry changes."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import tiny_config
from dogclf.data.loading import load_dataset
from dogclf.runtime import resolve_runtime
from dogclf.tune.features import FeatureCache, unavailable_reason


def _frozen(data, **overrides):
    base = {"model.freeze": "head", "data.augment": False, "runtime.precision": "fp32"}
    return tiny_config(data, **{**base, **overrides})


def _get(cache: FeatureCache, cfg):
    layout, _, fingerprint = load_dataset(cfg)
    return cache.get(cfg, layout, fingerprint, resolve_runtime(cfg.runtime))


def test_cache_is_reused_when_nothing_changed(tiny_data, tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    first = _get(cache, _frozen(tiny_data))
    again = _get(cache, _frozen(tiny_data, **{"optim.lr": 0.5, "data.batch_size": 3}))  # head-only settings
    assert first.built and not again.built
    assert again.path == first.path
    for split in ("train", "valid"):
        assert torch.equal(again.splits[split].features, first.splits[split].features)
        assert again.splits[split].labels.tolist() == first.splits[split].labels.tolist()
    assert first.splits["train"].features.shape == (36, 64)  # tiny_cnn's 64 pooled channels per image
    assert "test" not in first.splits


def test_cache_is_rebuilt_when_preprocessing_changes(tiny_data, tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    small = _get(cache, _frozen(tiny_data))
    larger = _get(cache, _frozen(tiny_data, **{"data.image_size": 48}))
    assert larger.built and larger.key != small.key
    assert not torch.allclose(larger.splits["train"].features, small.splits["train"].features)
    meta = json.loads((larger.path / "meta.json").read_text())
    assert meta["key"]["preprocess"]["image_size"] == 48


def test_cache_is_rebuilt_when_the_dataset_changes(tiny_data, tmp_path):
    data = shutil.copytree(tiny_data, tmp_path / "dogs")
    cache = FeatureCache(tmp_path / "cache")
    before = _get(cache, _frozen(data))
    cfg = _frozen(data)
    layout, _, _ = load_dataset(cfg)
    changed = layout.splits["train"][0]
    Image.fromarray(np.full((32, 32, 3), 255, np.uint8)).save(changed.path)  # same name, new pixels
    after = _get(cache, cfg)
    assert after.built and after.key != before.key
    assert not torch.equal(after.splits["train"].features[0], before.splits["train"].features[0])
    assert torch.equal(after.splits["train"].features[1:], before.splits["train"].features[1:])


def test_entry_that_does_not_match_its_key_is_rebuilt(tiny_data, tmp_path, caplog):
    cache = FeatureCache(tmp_path / "cache")
    good = _get(cache, _frozen(tiny_data))
    meta_file = good.path / "meta.json"
    meta = json.loads(meta_file.read_text())
    meta["counts"]["train"] += 1
    meta_file.write_text(json.dumps(meta))
    with caplog.at_level(logging.WARNING, logger="dogclf"):
        rebuilt = _get(cache, _frozen(tiny_data))
    assert rebuilt.built and rebuilt.path == good.path
    assert "does not match" in caplog.text and "image counts" in caplog.text
    assert json.loads(meta_file.read_text())["counts"]["train"] == 36
    assert not _get(cache, _frozen(tiny_data)).built


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"data.augment": True}, "data.augment is on"),
        ({"model.freeze": "full"}, "model.freeze=nothing trains the backbone"),
        ({"model.arch": "efficientnet_b0"}, "efficientnet_b0 has batch statistics, dropout or stochastic depth"),
        ({"model.arch": "resnet18"}, None),
        ({}, None),
    ],
)
def test_cache_applies_only_when_the_trainer_would_see_fixed_features(tiny_data, overrides, expected):
    reason = unavailable_reason(_frozen(tiny_data, **overrides))
    assert (reason is None) if expected is None else (expected in reason)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_cached_features_are_the_trainers_backbone_outputs(tiny_data, tmp_path, precision):
    """The folded serving path gives the unfolded backbone's features: to fp32 rounding, or bf16's top-1-safe error."""
    from dogclf.data.dataset import ImageDataset
    from dogclf.data.preprocess import Preprocess, eval_transform
    from dogclf.tune.features import feature_extractor

    cfg = _frozen(tiny_data, **{"runtime.precision": precision})
    cached = _get(FeatureCache(tmp_path / "cache"), cfg)
    layout, _, _ = load_dataset(cfg)
    pre = Preprocess.for_size(cfg.data.image_size, cfg.data.resize_size)
    images = ImageDataset(layout.splits["valid"], eval_transform(pre), pre.decode_options())
    batch = torch.stack([images[i][0] for i in range(len(images))])
    fp32 = resolve_runtime(cfg.runtime.model_copy(update={"precision": "fp32"}))
    with torch.inference_mode():
        expected = feature_extractor(cfg, len(layout.class_folders), fp32)(batch)
    got = cached.splits["valid"].features.float()
    assert got.dtype == torch.float32 and cached.splits["valid"].features.dtype == (
        torch.bfloat16 if precision == "bf16" else torch.float32
    )
    tolerance = 1e-4 if precision == "fp32" else 3e-2  # bf16 keeps 8 bits of mantissa: ~0.4% per value
    assert torch.allclose(got, expected, rtol=tolerance, atol=tolerance * float(expected.abs().max()))
