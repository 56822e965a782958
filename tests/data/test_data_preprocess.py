"""One preprocessing definition: eval transform geometry and normalization."""

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
