"""The self-contained HTML profiler report: time split, rules with recommendations, slowest ops, plots."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path

from dogclf.fsutil import atomic_write_text
from dogclf.profile.data import REPORT_FILE, RULES_FILE, SPLITS, TRACE_FILE, ProfileData, load_profile
from dogclf.profile.rules import evaluate_rules, time_split_advice
from dogclf.report_html import figure_to_data_uri, img, page, table
from dogclf.verdicts import RuleResult

_COLORS = {"data": "#d62728", "forward": "#1f77b4", "backward": "#ff7f0e", "optimizer": "#2ca02c"}


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#666")
    ax.set_xticks([])
    ax.set_yticks([])


def _step_figures(data: ProfileData) -> list[tuple[str, str]]:
    """Step-time histogram and the per-step split over training, as (alt, data URI)."""
    from dogclf.plots import subplots

    total = data.step_total * 1e3
    fig, ax = subplots(figsize=(8, 3.2))
    if total.size:
        ax.hist(total, bins=min(50, max(5, total.size // 3)), color="#1f77b4")
        ax.axvline(float(total.mean()), color="black", ls="--", label=f"mean {total.mean():.1f} ms")
        ax.legend()
    else:
        _empty(ax, "no training steps recorded")
    ax.set(title="step time histogram", xlabel="ms per step", ylabel="steps")
    hist = figure_to_data_uri(fig)
    fig, ax = subplots(figsize=(10, 3.4))
    if total.size:
        bottom = total * 0
        for split in SPLITS:
            values = data.steps[split] * 1e3
            ax.bar(data.steps["step"], values, bottom=bottom, width=1.0, color=_COLORS[split], label=split)
            bottom = bottom + values
        ax.legend(ncol=4, fontsize=8)
    else:
        _empty(ax, "no training steps recorded")
    ax.set(title="step time split per step", xlabel="step", ylabel="ms")
    return [("step time histogram", hist), ("step time split per step", figure_to_data_uri(fig))]


def _system_figure(data: ProfileData) -> tuple[str, str]:
    """Timelines of CPU (total and per core), process memory, disk IO and GPU, sharing the time axis."""
    from dogclf.plots import subplots

    s = data.system
    rows = 4 if data.has_gpu else 3
    fig, axes = subplots(rows, 1, figsize=(10, 2.3 * rows), sharex=True)
    if not s["t"].size:
        for ax in axes:
            _empty(ax, "no system samples (run shorter than one sampling interval)")
        return "system metrics timeline", figure_to_data_uri(fig)
    t = s["t"]
    for core in range(data.cpu_per_core.shape[1]):
        axes[0].plot(t, data.cpu_per_core[:, core], lw=0.6, alpha=0.5)
    axes[0].plot(t, s["cpu_total"], color="black", lw=1.5, label="all cores")
    axes[0].plot(t, s["iowait"], color="#d62728", lw=1, label="iowait")
    axes[0].set(ylabel="CPU %", ylim=(0, 105), title="CPU per core (thin), total and iowait")
    axes[1].plot(t, s["rss_mb"], color="#9467bd")
    axes[1].set(ylabel="MB", title="process memory (RSS incl. loader workers)")
    axes[2].plot(t, s["disk_read_mbs"], label="read")
    axes[2].plot(t, s["disk_write_mbs"], label="write")
    axes[2].set(ylabel="MB/s", title="disk IO (whole machine)")
    if data.has_gpu:
        axes[3].plot(t, s["gpu_util"], label="utilization")
        axes[3].plot(t, s["gpu_mem"], label="memory")
        axes[3].set(ylabel="%", ylim=(0, 105), title="GPU")
    for ax in axes:
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="upper right")
    axes[-1].set_xlabel("seconds since training started")
    fig.tight_layout()
    return "system metrics timeline", figure_to_data_uri(fig)


def _summary(data: ProfileData) -> str:
    m, total = data.meta, data.step_total
    facts = [
        ("device", f"{m.get('device')} {m.get('gpu_name') or ''}".strip()),
        ("precision / channels_last", f"{m.get('precision')} / {m.get('channels_last')}"),
        ("model / batch size", f"{m.get('arch')} / {m.get('batch_size')}"),
        (
            "loader workers / CPU cores / torch threads",
            f"{m.get('workers')} / {m.get('cores')} / {m.get('threads')}",
        ),
        (
            "training steps",
            f"{total.size} ({total.sum():.1f} s in steps, run {m.get('train_seconds', 0):.1f} s)",
        ),
        ("first step finished after", f"{m.get('first_step_seconds', float('nan')):.1f} s"),
        ("system samples", f"{data.system['t'].size} every {m.get('interval_ms')} ms"),
    ]
    grand = max(float(total.sum()), 1e-12)
    split_rows = [
        (
            k,
            f"{data.steps[k].sum():.2f}",
            f"{data.steps[k].sum() / grand * 100:.1f}%",
            f"{data.steps[k].mean() * 1e3 if total.size else 0:.2f}",
        )
        for k in SPLITS
    ]
    advice = "".join(f"<li>{html.escape(a)}</li>" for a in time_split_advice(data))
    return (
        table(["setting", "value"], facts)
        + "<h3>Training time split</h3>"
        + table(["part of step", "seconds", "share", "mean ms/step"], split_rows)
        + (f"<ul>{advice}</ul>" if advice else "")
    )


def _rules_section(results: Sequence[RuleResult]) -> str:
    fired = sum(r.triggered for r in results)
    rows = [
        (
            r.rule,
            r.status,
            r.finding,
            r.advice,
            ", ".join(f"{k}={v:g}" for k, v in (r.parameters or {}).items()),
            r.datapoints,
        )
        for r in results
    ]
    lead = f"<p>{fired} of {len(results)} rules found issues (defaults: SageMaker's ProfilerReport).</p>"
    return lead + table(
        ["rule", "status", "details", "recommendation", "parameters", "datapoints"],
        rows,
        classes=[None, "status"],
    )


def _ops_section(data: ProfileData) -> str:
    if not data.ops:
        return '<p class="muted">No torch.profiler window was recorded (too few steps, or trace_steps=0).</p>'
    headers = ["operator", "calls", "self CPU ms", "CPU total ms"] + (["self GPU ms"] if data.has_gpu else [])
    rows = [
        [o["name"], o["calls"], f"{o['self_cpu_ms']:.2f}", f"{o['cpu_total_ms']:.2f}"]
        + ([f"{o['self_device_ms']:.2f}"] if data.has_gpu else [])
        for o in data.ops[:15]
    ]
    trace = data.folder / TRACE_FILE
    note = (
        f'<p class="muted">Chrome trace: {html.escape(str(trace))} (open in https://ui.perfetto.dev or '
        "chrome://tracing); full operator table in ops.txt.</p>"
    )
    return table(headers, rows) + note


def write_report(
    run_dir: str | Path,
    output: str | Path | None = None,
    results: Sequence[RuleResult] | None = None,
    overrides: dict[str, float] | None = None,
) -> Path:
    """Write the profiler report of a run (default RUN/profile/report.html) and return its path."""
    data = load_profile(run_dir)
    if results is None:
        results = evaluate_rules(data, overrides)
        atomic_write_text(data.folder / RULES_FILE, json.dumps([r.to_dict() for r in results], indent=1))
    figures = [*_step_figures(data), _system_figure(data)]
    plots = "".join(img(uri, alt) for alt, uri in figures)
    name = data.folder.parent.name
    doc = page(
        f"Profiler report: {name}",
        [
            ("Summary", _summary(data)),
            ("Rules", _rules_section(results)),
            ("Step time and system metrics", plots),
            ("Slowest operators (torch.profiler window)", _ops_section(data)),
        ],
        subtitle=f"{data.folder}",
    )
    out = Path(output) if output else data.folder / REPORT_FILE
    return atomic_write_text(out, doc)
