"""One preprocessing definition: eval transform geometry and normalization."""

import numpy as np
import pytest
import torch
from PIL import Image

from dogclf.data.preprocess import Preprocess, eval_transform, load_eval_tensor, train_transform


def test_eval_transform_resizes_center_crops_and_normalizes(tmp_path):
    p = Preprocess.for_size(32)
    assert p.resize_size == 37
    img = Image.new("RGB", (80, 40), (124, 116, 104))  # ~ImageNet mean
    x = eval_transform(p)(img)
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    assert x.abs().max() < 0.05
    path = tmp_path / "a.png"
    img.save(path)
    assert torch.equal(load_eval_tensor(path, p), x)
    assert torch.equal(load_eval_tensor(path.read_bytes(), p), x)


def test_train_transform_augments_but_keeps_shape():
    p = Preprocess.for_size(24)
    img = Image.effect_noise((60, 50), 40).convert("RGB")
    torch.manual_seed(0)
    a = train_transform(p)(img)
    b = train_transform(p)(img)
    assert a.shape == b.shape == (3, 24, 24)
    assert not torch.equal(a, b)
    assert torch.equal(train_transform(p, augment=False)(img), eval_transform(p)(img))


def _two_pass(p: Preprocess):
    """torchvision's Resize + CenterCrop + normalization: what EvalTransform must reproduce."""
    from torchvision.transforms import v2

    mode = v2.InterpolationMode.BICUBIC if p.interpolation == "bicubic" else v2.InterpolationMode.BILINEAR
    geometry = [v2.Resize(p.resize_size, interpolation=mode, antialias=True), v2.CenterCrop(p.image_size)]
    return v2.Compose([*geometry, v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(p.mean, p.std)])


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
@pytest.mark.parametrize("size", [(320, 240), (500, 375), (240, 320), (256, 256), (1000, 90), (41, 300), (224, 224)])
def test_eval_transform_matches_resize_then_crop_within_one_level(size, interpolation):
    p = Preprocess(image_size=224, resize_size=256, interpolation=interpolation)
    rng = np.random.default_rng(sum(size))
    yy, xx = np.mgrid[0 : size[1], 0 : size[0]]
    smooth = 127 + 100 * np.sin(xx[..., None] / 7 + yy[..., None] / 11 + np.arange(3))
    img = Image.fromarray(np.clip(smooth + rng.normal(0, 20, smooth.shape), 0, 255).astype(np.uint8))
    fused, reference = eval_transform(p)(img), _two_pass(p)(img)
    assert fused.shape == reference.shape == (3, 224, 224) and fused.dtype == torch.float32
    if interpolation == "bicubic":  # resize then crop, as torchvision: the same pixels
        assert float((fused - reference).abs().max()) < 1e-5
        return
    one_level = 1 / 255 / min(p.std) + 1e-5
    assert float((fused - reference).abs().max()) <= one_level
    assert float((fused - reference).abs().mean()) < 0.3 * one_level  # rounding of some pixels
    assert abs(float((fused - reference).mean())) < 0.05 * one_level  # not a shift of the image


def test_eval_transform_falls_back_to_torchvision_for_padding_crops_and_other_modes():
    padded = Preprocess(image_size=64, resize_size=48)  # the crop is larger than the resized image: zero padding
    img = Image.effect_noise((80, 60), 40).convert("RGB")
    assert torch.equal(eval_transform(padded)(img), _two_pass(padded)(img))
    gray = Image.effect_noise((80, 60), 40)
    p = Preprocess.for_size(32)
    assert torch.equal(eval_transform(p)(gray), _two_pass(p)(gray))


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
def test_uint8_crops_normalized_alone_or_as_a_batch_are_the_eval_tensor(interpolation):
    p = Preprocess(
        image_size=32, resize_size=37, interpolation=interpolation, mean=(0.2, 0.4, 0.6), std=(0.3, 0.2, 0.2)
    )

    transform = eval_transform(p)
    images = [Image.effect_noise(size, 50).convert("RGB") for size in ((80, 40), (33, 61), (32, 32))]
    crops = [transform.pixels(img) for img in images]
    assert all(c.dtype == np.uint8 and c.shape == (32, 32, 3) and c.flags.writeable for c in crops)
    expected = torch.stack([transform(img) for img in images])
    assert torch.equal(torch.stack([transform.normalize(c) for c in crops]), expected)
    assert torch.equal(transform.normalize(np.stack(crops)), expected)  # NHWC batch -> NCHW, same numbers
    assert torch.equal(transform.normalize(torch.from_numpy(np.stack(crops))), expected)  # a DataLoader's batch
