"""Config: defaults, file + overrides, and errors that name the field."""

import pytest
import yaml

from dogclf.config import build_config, parse_yaml_value, read_config_file
from dogclf.errors import ConfigError

LAUGHS_TEXT = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)


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


def test_explicit_null_override_wins_over_the_file(tmp_path):
    # "Not given" is a missing key; None is a value: random init, even when the file asks for imagenet.
    f = tmp_path / "c.yaml"
    f.write_text("model:\n  weights: imagenet\n  arch: resnet18\noptim:\n  grad_clip: 1.0\n")
    cfg = build_config(f, {"model.weights": None, "optim.grad_clip": None})
    assert cfg.model.weights is None and cfg.optim.grad_clip is None and cfg.model.arch == "resnet18"
    assert build_config(f).model.weights == "imagenet" and build_config(f).optim.grad_clip == 1.0


def test_null_in_a_file_overrides_the_base(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("model:\n  weights: null\n")
    assert build_config(f, base={"model": {"weights": "imagenet"}}).model.weights is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfeoptim: 1\n", r"c\.yaml is not UTF-8 text"),
        (b"optim: [1,\n", r"c\.yaml is not valid YAML/JSON: .*line"),
        (b"- a\n- b\n", r"c\.yaml must hold a mapping of sections, got a list"),
        (b"x: !!python/object/apply:os.system ['true']\n", r"c\.yaml is not valid YAML/JSON: could not determine"),
        (
            LAUGHS_TEXT.encode(),
            r"c\.yaml is not valid YAML/JSON: more than 100000 values once its aliases are expanded",
        ),
        (b"optim: &o {lr: *o}\n", r"c\.yaml is not valid YAML/JSON: a recursive alias \(line 1"),
        (b"optim: " + b"[" * 50_000 + b"]" * 50_000 + b"\n", r"c\.yaml is not valid YAML/JSON: nested too deeply"),
        (b"optim: {lr: " + b"9" * 5000 + b"}\n", r"c\.yaml is not valid YAML/JSON: Exceeds the limit"),
    ],
)
def test_broken_config_files_are_one_line_errors_naming_the_file(tmp_path, content, message):
    f = tmp_path / "c.yaml"
    f.write_bytes(content)
    with pytest.raises(ConfigError, match=message) as info:
        build_config(f)
    assert "\n" not in str(info.value)


def test_alias_budget_counts_expanded_values_both_ways():
    from dogclf.safe_yaml import MAX_YAML_NODES, load_yaml

    fits = "a: &a [" + ", ".join(["1"] * 99) + "]\n" + "".join(f"k{i}: *a\n" for i in range(900))
    assert len(load_yaml(fits)) == 901  # 901 lists of 99 shared values: 90,000+ values, within the budget
    over = fits + "".join(f"m{i}: *a\n" for i in range(MAX_YAML_NODES // 100))
    with pytest.raises(yaml.YAMLError, match="more than 100000 values"):
        load_yaml(over)
    with pytest.raises(ConfigError, match="--set optim.lr: .* is not a plain YAML value: a recursive alias"):
        parse_yaml_value("&a [*a]", "--set optim.lr")


def test_config_files_are_bounded_and_links_refused_only_inside_runs(tmp_path):
    from dogclf.config import MAX_CONFIG_BYTES

    real = tmp_path / "real.yaml"
    real.write_text("optim:\n  lr: 0.5\n")
    link = tmp_path / "link.yaml"
    link.symlink_to(real)
    assert read_config_file(link) == {"optim": {"lr": 0.5}}  # a user's config may be a link
    with pytest.raises(ConfigError, match=f"^config file {link} is a symbolic link"):
        read_config_file(link, follow_links=False)  # a run's own config.yaml may not
    big = tmp_path / "big.yaml"
    big.write_bytes(b"optim: {}\n" + b"#" * (MAX_CONFIG_BYTES - 10))
    assert read_config_file(big) == {"optim": {}}  # exactly at the limit
    big.write_bytes(b"optim: {}\n" + b"#" * (MAX_CONFIG_BYTES - 9))
    with pytest.raises(ConfigError, match=f"^config file {big} is larger than 1 MiB"):
        read_config_file(big)
    with pytest.raises(ConfigError, match="^config file /dev/zero is not a regular file"):
        read_config_file("/dev/zero")
