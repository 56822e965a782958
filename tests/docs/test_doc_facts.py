"""Facts the manual states that the code decides: rule names and defaults, metric lines, serving limits."""

from __future__ import annotations

import inspect
import re

import pytest

from conftest import ROOT

SAGEMAKER_MD = (ROOT / "docs" / "sagemaker.md").read_text(encoding="utf-8")
SERVING_MD = (ROOT / "docs" / "serving.md").read_text(encoding="utf-8")


def section(text: str, title: str) -> str:
    """The body of the `## title` section."""
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def rule_blocks(text: str) -> dict[str, str]:
    """`#### Name` -> its text, within one section."""
    parts = re.split(r"^#### (\w+)\n", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def debugger_defaults() -> dict[str, list[str]]:
    from dogclf.debug.rules import RULES

    return {
        name: [f"`{p}={v.default!r}`" for p, v in inspect.signature(cls).parameters.items() if p != "base_trial"]
        for name, cls in RULES.items()
    }


def profiler_defaults() -> dict[str, list[str]]:
    from dogclf.profile.rules import RULES

    return {name: [f"`{p}={v!r}`" for p, v in defaults.items()] for name, (defaults, _) in RULES.items()}


@pytest.mark.parametrize(("title", "defaults"), [("Debugger rules", debugger_defaults),
                                                 ("Profiler rules", profiler_defaults)])  # fmt: skip
def test_every_rule_is_documented_with_its_defaults_and_advice(title, defaults):
    blocks = rule_blocks(section(SAGEMAKER_MD, title))
    expected = defaults()
    assert set(blocks) == set(expected), f"documented {sorted(blocks)}, defined {sorted(expected)}"
    for name, params in expected.items():
        missing = [p for p in params if p not in blocks[name]]
        assert not missing, f"docs/sagemaker.md #### {name}: defaults {missing} not stated"
        assert "**Do**" in blocks[name] or not params, f"#### {name} must say what to do when it fires"


def test_builtin_debugger_rules_are_named():
    from dogclf.sagemaker import BUILTIN_RULES

    text = section(SAGEMAKER_MD, "Debugger rules")
    assert all(f"`{name}`" in text for name in BUILTIN_RULES)


def test_metric_line_and_regex_are_the_code_s():
    from dogclf.training.metrics import format_metric_line, metric_definitions, metric_regex

    lines = [
        format_metric_line(3, "train", {"loss": 0.3981, "top1": 0.925, "top5": 0.992, "n": 6680, "lr": 0.000812}),
        format_metric_line(
            3,
            "valid",
            {"loss": 0.4123, "top1": 0.912, "top5": 0.99, "balanced_accuracy": 0.905, "macro_f1": 0.901, "n": 835},
        ),  # fmt: skip
        format_metric_line(
            1, "valid", {"loss": 0.605, "top1": 0.8, "top5": None, "balanced_accuracy": 0.8, "macro_f1": 0.79, "n": 40}
        ),  # fmt: skip
    ]
    assert all(f"\n{line}\n" in SAGEMAKER_MD for line in lines), lines
    assert metric_regex("valid", "loss") in SAGEMAKER_MD
    assert all(f"`{d['Name']}`" in SAGEMAKER_MD for d in metric_definitions())


# flag -> (ServeConfig field, the default as the docs write it, the value it stands for)
SERVE_DEFAULTS = {
    "--max-body-bytes": ("max_body_bytes", "6 MiB", 6 * 1024 * 1024),
    "--max-pixels": ("max_pixels", "25,000,000", 25_000_000),
    "--max-images-per-request": ("max_images_per_request", "32", 32),
    "--max-queue-images": ("max_queue_images", "256", 256),
    "--timeout-s": ("timeout_s", "60", 60),
    "--max-batch-size": ("max_batch_size", "16", 16),
    "--max-batch-delay-ms": ("max_batch_delay_ms", "5", 5),
    "--decode-threads": ("decode_threads", "`min(4, CPUs)`", None),  # resolved in the server, tested there
    "--default-topk": ("default_topk", "5", 5),
}


@pytest.mark.parametrize("flag", SERVE_DEFAULTS)
def test_serving_defaults_are_the_code_s(flag):
    from dogclf.serve.config import ServeConfig

    field, written, value = SERVE_DEFAULTS[flag]
    assert ServeConfig.model_fields[field].default == value
    assert f"`{flag}` ({written}" in SERVING_MD, f"docs/serving.md should state `{flag}` ({written})"


def test_serving_routes_and_types_are_the_code_s():
    from dogclf.serve.codecs import SUPPORTED_ACCEPTS, SUPPORTED_CONTENT_TYPES
    from dogclf.serve.server import ROUTES

    assert all(f"`{t}`" in SERVING_MD for t in (*SUPPORTED_CONTENT_TYPES, *SUPPORTED_ACCEPTS))
    assert all(f"`{'POST' if r.endswith('invocations') else 'GET'} {r}`" in SERVING_MD for r in ROUTES)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path) -> set[str]:
    text = re.sub(r"^[ \t]*```.*?^[ \t]*```", "", path.read_text(encoding="utf-8"), flags=re.M | re.S)
    return {_slug(h) for h in re.findall(r"^#+ (.+)$", text, re.M)}


@pytest.mark.parametrize("doc", ["README.md", *sorted(p.name for p in (ROOT / "docs").glob("*.md"))])
def test_relative_links_resolve(doc):
    path = ROOT / doc if doc == "README.md" else ROOT / "docs" / doc
    for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text(encoding="utf-8")):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        assert linked.exists(), f"{doc}: link to missing {target}"
        assert not anchor or anchor in _anchors(linked), f"{doc}: no heading for #{anchor} in {linked.name}"


def test_sagemaker_doc_states_prices_regions_and_collections_as_the_code_has_them():
    from dogclf.debug.config import DebugConfig
    from dogclf.sagemaker import RULE_EVALUATOR_ACCOUNTS

    text = " ".join(SAGEMAKER_MD.split())
    assert "approximate list prices, us-east-1, at time of writing; check the pricing page" in text
    china = sorted(r for r in RULE_EVALUATOR_ACCOUNTS if r.startswith("cn-"))
    rules = " ".join(section(SAGEMAKER_MD, "Debugger rules").split())
    assert f"the {len(RULE_EVALUATOR_ACCOUNTS) - len(china)} commercial regions" in rules
    assert all(f"{r}" in rules for r in china)
    defaults = DebugConfig.model_fields["collections"].default
    assert "default " + ", ".join(f"`{c}`" for c in defaults) in rules


OLD_FREEZE = re.compile(r"""freeze["'`]?\s*(?:[:=]\s*|\s+)["'`]?(?:head|full)\b""")
FREEZE_TEXTS = sorted(
    [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "examples").glob("*.py")]
    + [*(ROOT / "benchmarks").glob("*.py")]
)


def test_the_old_freeze_pattern_finds_old_names_only():
    for old in ("--freeze head", 'freeze="full"', '"model.freeze": "head"', "model.freeze=full", "freeze: full"):
        assert OLD_FREEZE.search(old), old
    for current in ("--freeze backbone", 'freeze="nothing"', '"model.freeze": "staged"', "freeze the head"):
        assert not OLD_FREEZE.search(current), current


@pytest.mark.parametrize("path", FREEZE_TEXTS, ids=[p.name for p in FREEZE_TEXTS])
def test_docs_and_examples_use_current_freeze_names(path):
    assert OLD_FREEZE.findall(path.read_text(encoding="utf-8")) == []
