"""The dogclf CLI in subprocesses: sample data, check, train, evaluate --json, predict, and one-line errors."""

import json

from conftest import run_cli


def test_make_sample_check_train_evaluate(tmp_path):
    data = tmp_path / "data"
    r = run_cli("data", "make-sample", str(data), "--classes", "3", "--per-class", "10", "--size", "32")
    assert r.returncode == 0 and "sample dataset" in r.stdout
    r = run_cli("data", "check", str(data))
    assert r.returncode == 0 and "all images decode" in r.stdout and "Affenpinscher" in r.stdout

    run = tmp_path / "run"
    r = run_cli(
        "train",
        "--data",
        str(data),
        "--output",
        str(run),
        "--arch",
        "tiny_cnn",
        "--weights",
        "none",
        "--freeze",
        "full",
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--image-size",
        "32",
        "--workers",
        "0",
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("[metrics] epoch=") == 5  # 2 x (train + valid) + test
    assert f"model: {run / 'model'}" in r.stdout

    r = run_cli("evaluate", str(run), "--data", str(data), "--split", "test", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["n"] == 6 and {"top1", "top5", "loss", "confusion"} <= set(out)
    summary = json.loads((run / "summary.json").read_text())
    assert abs(out["top1"] - summary["metrics"]["test_top1"]) < 1e-9


def test_data_check_names_bad_files_and_exits_1(tmp_path):
    data = tmp_path / "data"
    assert (
        run_cli("data", "make-sample", str(data), "--classes", "2", "--per-class", "3", "--size", "16").returncode == 0
    )
    bad = data / "test" / "001.Affenpinscher" / "bad.jpg"
    bad.write_text("not an image")
    r = run_cli("data", "check", str(data))
    assert r.returncode == 1 and str(bad) in r.stdout and "not a recognised image" in r.stdout


def test_user_errors_are_one_line_without_traceback(tmp_path):
    cases = [
        ("train", "--data", str(tmp_path / "missing"), "--output", str(tmp_path / "o")),
        ("train", "--data", str(tmp_path), "--output", str(tmp_path / "o"), "--lr", "-3"),
        ("train", "--data", str(tmp_path), "--output", str(tmp_path / "o"), "--arch", "resnet5O"),
        ("evaluate", str(tmp_path / "nomodel"), "--data", str(tmp_path)),
    ]
    for args in cases:
        r = run_cli(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert "Traceback" not in r.stderr
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        assert lines[-1].startswith("dogclf: error: "), r.stderr


def test_every_command_has_help():
    r = run_cli("--help")
    assert r.returncode == 0
    for cmd in ("data", "train", "evaluate", "quickstart"):
        assert cmd in r.stdout
        assert run_cli(cmd, "--help").returncode == 0


def test_broken_config_inputs_are_one_line_naming_the_file_or_flag(tmp_path):
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("name: caf\xe9\n".encode("latin-1"))
    listed = tmp_path / "list.yaml"
    listed.write_text("- optim\n- model\n")
    train = ("train", "--data", str(tmp_path), "--output", str(tmp_path / "o"))
    cases = [
        ((*train, "--config", str(latin1)), f"config file {latin1} is not UTF-8 text"),
        ((*train, "--config", str(listed)), f"config file {listed} must hold a mapping of sections, got a list"),
        ((*train, "--set", "optim.lr=!!python/object/apply:os.system ['true']"), "--set optim.lr: "),
    ]
    for args, message in cases:
        r = run_cli(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr.strip().splitlines() == [r.stderr.strip()] and message in r.stderr, r.stderr
    assert not (tmp_path / "o").exists()
