"""Self-contained HTML debug report: rule table, loss curves, per-layer gradient norms, weight histograms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dogclf.debug.config import TRAIN_LOSS_TENSOR
from dogclf.debug.engine import evaluate_rules, load_trial, tensors_dir
from dogclf.fsutil import atomic_write_text
from dogclf.report_html import figure_to_data_uri, img, page, table
from dogclf.verdicts import NOT_EVALUATED, RuleResult

MAX_LAYERS = 12


def _short(name: str) -> str:
    return name.split("/", 1)[-1].split("_", 1)[-1]


def _loss_figure(trial) -> Any:
    """Training loss per step and validation loss at the step it was measured."""
    from smdebug.core.modes import ModeKeys

    from dogclf.plots import subplots

    fig, ax = subplots(figsize=(9, 3.6))
    for name in trial.tensor_names(collection="losses"):
        t = trial.tensor(name)
        evaluated = "train, per epoch" if name.startswith(TRAIN_LOSS_TENSOR) else "valid"
        for mode, label, style in ((ModeKeys.TRAIN, "train", "-"), (ModeKeys.EVAL, evaluated, "o-")):
            steps = t.steps(mode=mode)
            if steps:
                xs = [trial.global_step(mode, s) for s in steps]
                ax.plot(xs, [float(t.value(s, mode=mode)) for s in steps], style, label=f"{label} ({name})")
    ax.set(xlabel="global step", ylabel="loss", title="Loss: train per step, valid per epoch")
    ax.set_yscale("symlog", linthresh=1.0)
    ax.legend(fontsize=8)
    return fig


def _gradient_figure(trial) -> Any:
    """L2 norm of each layer's gradient over the saved steps."""
    import numpy as np

    from dogclf.plots import subplots

    fig, ax = subplots(figsize=(9, 4))
    names = trial.tensor_names(collection="gradients") if "gradients" in trial.collections() else []
    for name in names[-MAX_LAYERS:]:
        t = trial.tensor(name)
        steps = t.steps()
        norms = [float(np.linalg.norm(np.nan_to_num(t.value(s), posinf=0, neginf=0))) for s in steps]
        ax.plot(steps, norms, label=_short(name))
    ax.set(xlabel="global step", ylabel="gradient L2 norm", title="Gradient norm per layer")
    ax.set_yscale("symlog", linthresh=1e-6)
    if names:
        ax.legend(fontsize=7, ncol=2)
    else:
        ax.text(0.5, 0.5, "no gradients saved", ha="center", transform=ax.transAxes)
    return fig


def _weight_figure(trial) -> Any:
    """Histograms of each weight tensor at the first and last saved step."""
    import numpy as np

    from dogclf.plots import subplots

    names = (trial.tensor_names(collection="weights") if "weights" in trial.collections() else [])[-MAX_LAYERS:]
    cols = 4
    rows = max(1, -(-len(names) // cols))
    fig, axes = subplots(rows, cols, figsize=(12, 2.6 * rows), squeeze=False)
    for ax in axes.ravel()[len(names) :]:
        ax.axis("off")
    if not names:
        axes[0][0].text(0.5, 0.5, "no weights saved", ha="center", transform=axes[0][0].transAxes)
    for ax, name in zip(axes.ravel(), names, strict=False):
        t = trial.tensor(name)
        steps = t.steps()
        for step, color in ((steps[0], "tab:blue"), (steps[-1], "tab:orange")):
            v = np.asarray(t.value(step), dtype=np.float64).ravel()
            v = v[np.isfinite(v)]
            if v.size:
                ax.hist(v, bins=40, alpha=0.55, color=color, label=f"step {step}")
        ax.set_title(_short(name), fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6)
    fig.suptitle("Weight distribution: first vs last saved step")
    fig.tight_layout()
    return fig


def rules_table(results: list[RuleResult]) -> str:
    """The rule verdicts as an HTML table (status cells styled)."""
    rows = [
        (r.rule, r.status, "" if r.step is None else r.step, r.finding or "-", r.explanation, r.advice) for r in results
    ]
    headers = ("Rule", "Status", "First step", "Finding", "Explanation", "Advice")
    return table(headers, rows, classes=(None, "status"))


def write_report(
    run_dir: str | Path,
    output: str | Path | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    results: list[RuleResult] | None = None,
) -> Path:
    """Write the HTML report (default RUN_DIR/debug/report.html) of `results`, or of the rules evaluated now."""
    folder = tensors_dir(run_dir)
    results = evaluate_rules(run_dir, overrides) if results is None else results
    trial = load_trial(folder)
    out = Path(output) if output else folder / "report.html"
    figures = [
        ("Loss curves", _loss_figure(trial), "loss curves"),
        ("Gradient norms per layer", _gradient_figure(trial), "gradient norms"),
        ("Weight distribution", _weight_figure(trial), "weight histograms"),
    ]
    issues = sum(r.triggered for r in results)
    skipped = sum(r.status == NOT_EVALUATED for r in results)
    sections = [("Rules", rules_table(results))]
    sections += [(title, img(figure_to_data_uri(fig), alt)) for title, fig, alt in figures]
    counts = f"{issues} rule(s) found issues, {skipped} not evaluated (collections not saved, or too little data)"
    subtitle = f"{Path(run_dir).resolve()} - {counts}, {len(trial.steps())} saved steps"
    atomic_write_text(out, page("dogclf debug report", sections, subtitle))
    return out
