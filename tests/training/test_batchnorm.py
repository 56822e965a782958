"""optim.bn_recalibrate: eval-mode BatchNorm statistics belong to the weights they ship with, not a lagging average."""

from __future__ import annotations

import pytest
import torch

from conftest import tiny_config
from dogclf.data.dataset import ImageDataset
from dogclf.data.preprocess import eval_transform
from dogclf.models import create_model
from dogclf.runtime import resolve_runtime
from dogclf.training import Trainer
from dogclf.training.batchnorm import recalibrate_batchnorm


def _first_conv_output(trainer: Trainer) -> torch.Tensor:
    """tiny_cnn's first conv over every train image (augment off: eval transform): what its first BatchNorm sees."""
    train = ImageDataset(
        trainer.layout.splits["train"], eval_transform(trainer.preprocess), trainer.preprocess.decode_options()
    )
    images = torch.stack([image for image, _ in train])
    with torch.no_grad():
        return trainer.model.features[0][0](images)


@pytest.mark.parametrize("recalibrate", [True, False])
def test_batchnorm_statistics_are_those_of_the_final_weights(tiny_data, tmp_path, recalibrate):
    cfg = tiny_config(tiny_data, **{"optim.bn_recalibrate": recalibrate, "optim.lr": 0.05, "data.augment": False,
                                    "data.eval_batch_size": 64, "runtime.precision": "fp32",
                                    "runtime.channels_last": False})  # fmt: skip
    trainer = Trainer(cfg, tmp_path / "run")
    trainer.fit()
    out, bn = _first_conv_output(trainer), trainer.model.features[0][1]
    own_mean, own_var = out.mean((0, 2, 3)), out.var((0, 2, 3))
    close = torch.allclose(bn.running_mean, own_mean, atol=1e-4) and torch.allclose(bn.running_var, own_var, rtol=1e-3)
    assert close == recalibrate, (bn.running_mean, own_mean)


def test_recalibration_leaves_frozen_batchnorm_alone():
    model = create_model("tiny_cnn", 3)
    frozen, trained = model.features[0][1], model.features[1][1]
    for p in frozen.parameters():
        p.requires_grad_(False)
    frozen.running_mean.fill_(0.5)
    trained.running_mean.fill_(0.5)
    images = torch.randn(6, 3, 32, 32)
    loader = [(images, torch.zeros(6, dtype=torch.long))]
    assert recalibrate_batchnorm(model, loader, resolve_runtime(tiny_config(".").runtime)) == 2
    assert torch.equal(frozen.running_mean, torch.full_like(frozen.running_mean, 0.5))
    assert not torch.allclose(trained.running_mean, torch.full_like(trained.running_mean, 0.5))
    assert not model.training  # handed back in eval mode


def test_recalibration_passes_are_not_training_steps_for_the_debug_hook(tiny_data, tmp_path):
    from smdebug import modes

    from dogclf.debug.engine import load_trial
    from dogclf.workflow import config_callbacks

    cfg = tiny_config(tiny_data, **{"optim.bn_recalibrate": True, "debug.enabled": True, "debug.save_interval": 1})
    trainer = Trainer(cfg, tmp_path / "run", callbacks=config_callbacks(cfg))
    trainer.fit()
    trial = load_trial(tmp_path / "run" / "debug")
    assert len(trial.steps(mode=modes.TRAIN)) == trainer.global_step
