"""`dogclf debug report` writes one self-contained HTML file whose plots render in headless Chromium."""

from __future__ import annotations

from browser import render
from conftest import run_cli, tiny_config
from dogclf.training import train


def test_report_renders_with_every_plot(tiny_data, tmp_path):
    cfg = tiny_config(tiny_data, **{"debug.enabled": True, "debug.save_interval": 2, "optim.epochs": 2})
    train(cfg, tmp_path / "run")
    out = tmp_path / "report.html"
    proc = run_cli("debug", "report", str(tmp_path / "run"), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    html = out.read_text()
    assert "http://" not in html and "https://" not in html  # nothing external
    # default collections lack relu_output: DeadRelu is not evaluated (and says so), no rule is an Error; 2 epochs
    # of 5 steps and 4 valid images per class are too little for LossNotDecreasing, Overtraining and
    # ClassImbalance's mispredictions, which say so too
    assert '<td class="NotEvaluated">NotEvaluated</td>' in html and "4 not evaluated" in html
    assert "debug.collections=[" in html and html.count("not evaluated: too little data") == 3
    assert '<td class="Error">' not in html
    page = render(out, tmp_path / "report.png")
    alts = {i["alt"]: i for i in page["images"]}
    assert set(alts) == {"loss curves", "gradient norms", "weight histograms"}
    assert all(i["complete"] and i["w"] > 0 and i["h"] > 0 for i in page["images"])
    assert "VanishingGradient" in page["text"] and "ClassImbalance" in page["text"]
