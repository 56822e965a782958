"""Config: defaults, file + overrides, and errors that name the field."""

import pytest

from dogclf.config import build_config
from dogclf.errors import ConfigError


def test_file_then_overrides(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("optim:\n  lr: 0.05\n  epochs: 3\nmodel:\n  arch: resnet18\n")
    cfg = build_config(f, {"optim.lr": "0.2", "model.weights": "none"})
    assert cfg.optim.lr == 0.2 and cfg.optim.epochs == 3 and cfg.model.arch == "resnet18"
    assert cfg.model.weights is None


def test_unknown_key_is_named(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("optim:\n  learning_rate: 0.1\n")
    with pytest.raises(ConfigError, match=r"optim\.learning_rate: unknown field"):
        build_config(f)


def test_out_of_range_value_is_named():
    with pytest.raises(ConfigError, match=r"data\.batch_size: Input should be greater than or equal to 1"):
        build_config(overrides={"data.batch_size": 0})


def test_staged_needs_more_epochs_than_head_epochs():
    with pytest.raises(ConfigError, match="head_epochs"):
        build_config(overrides={"model.freeze": "staged", "optim.epochs": 1, "optim.head_epochs": 1})


def test_unreadable_and_non_mapping_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        build_config(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        build_config(tmp_path / "list.yaml")
