"""`dogclf data check`: per-class counts of usable images only, bad files apart, and a quiet closed pipe."""

import io
import json
import subprocess
import sys

from PIL import Image

from conftest import ROOT
from dogclf.cli.main import main
from dogclf.data.synthetic import make_dataset


def _dataset(tmp_path, bad: int):
    data = make_dataset(tmp_path / "data", classes=2, per_class=4, size=16, eval_per_class=2)
    folder = data / "train" / "001.Affenpinscher"
    for i in range(bad):
        (folder / f"bad{i}.jpg").write_text("not an image")
    return data


def _row(out: str, name: str) -> list[int]:
    line = next(line for line in out.splitlines() if line.split() and line.split()[0] == name)
    return [int(x) for x in line.split()[1:]]


def test_table_counts_only_usable_images_and_bad_ones_apart(tmp_path, capsys):
    data = _dataset(tmp_path, bad=3)
    assert main(["data", "check", str(data)]) == 1
    out = capsys.readouterr().out
    assert _row(out, "Affenpinscher")[0] == 4 and _row(out, "(bad)")[0] == 3
    assert main(["data", "check", str(data), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["counts"]["train"] == [4, 4] and doc["bad_counts"]["train"] == [3, 0] and len(doc["bad"]) == 3


def test_clean_dataset_has_no_bad_row(tmp_path, capsys):
    data = _dataset(tmp_path, bad=0)
    assert main(["data", "check", str(data)]) == 0
    out = capsys.readouterr().out
    assert _row(out, "Affenpinscher")[0] == 4 and "(bad)" not in out


def test_eps_in_a_dataset_is_refused_by_format_not_parsed(tmp_path, capsys):
    data = _dataset(tmp_path, bad=0)
    eps = data / "train" / "001.Affenpinscher" / "x.jpg"
    eps.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n")
    png = io.BytesIO()
    Image.new("RGB", (8, 8)).save(png, format="PNG")
    (data / "train" / "002.Afghan_hound" / "y.jpg").write_bytes(png.getvalue())  # wrong suffix, allowed format
    assert main(["data", "check", str(data)]) == 1
    out = capsys.readouterr().out
    assert "x.jpg: EPS images are not accepted" in out and "y.jpg" not in out


def test_output_piped_into_a_closed_reader_exits_quietly(tmp_path):
    data = _dataset(tmp_path, bad=0)
    code = "import sys; from dogclf.cli.main import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "data", "check", str(data)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        cwd=ROOT,
    )  # fmt: skip
    proc.stdout.close()  # the reader is gone before the command prints, like `| head -0`
    err = proc.stderr.read().decode()
    assert proc.wait(60) == 141, err
    assert "Traceback" not in err and "BrokenPipeError" not in err
