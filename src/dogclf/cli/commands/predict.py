"""`dogclf predict`: top-k breeds for files or folders, offline from a model or through an endpoint."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from dogclf.cli.options import add_backend_option
from dogclf.config import PRECISIONS
from dogclf.prediction_format import MAX_TOPK, FileResult, is_unknown


def _offline(model: str, files: list[Path], args: argparse.Namespace, bar) -> list[FileResult]:
    """Predict in batches with the artifact's own preprocessing; undecodable files become error rows."""
    from dogclf.prediction import predict_files

    return predict_files(
        model,
        files,
        args.topk,
        args.batch_size,
        args.min_confidence,
        args.raw_scores,
        args.backend,
        args.precision,
        progress=bar.update,
    )


def _with_threshold(result: FileResult, min_confidence: float) -> FileResult:
    """An endpoint's answer, also marked unknown when below this client's --min-confidence."""
    p = result.prediction
    if p is None or p.unknown or not is_unknown(p.probabilities[0], min_confidence):
        return result
    return replace(result, prediction=replace(p, unknown=True))


def _jsonl(results: list[FileResult]) -> str:
    lines = []
    for r in results:
        doc: dict = {"path": str(r.path)}
        if r.prediction is not None:
            doc.update(r.prediction.to_dict())
        else:
            doc["error"] = r.error
        lines.append(json.dumps(doc))
    return "\n".join(lines) + "\n"


def _csv(results: list[FileResult], topk: int, answer: bool = False) -> str:
    """One row per image; with `answer` (--min-confidence) a column holds the label or "unknown"."""
    from dogclf.prediction_table import PredictionRow, predictions_csv

    rows = [
        PredictionRow(str(r.path), r.prediction.labels, r.prediction.probabilities, answer=r.prediction.answer)
        if r.prediction is not None
        else PredictionRow(str(r.path), error=r.error)
        for r in results
    ]
    return predictions_csv(rows, topk, answer)


def _text(results: list[FileResult]) -> str:
    lines = []
    for r in results:
        if r.prediction is None:
            lines.append(f"{r.path}: error: {r.error}")
        else:
            pairs = zip(r.prediction.labels, r.prediction.probabilities, strict=True)
            top = ", ".join(f"{lbl} {p:.3f}" for lbl, p in pairs)
            lines.append(f"{r.path}: unknown ({top})" if r.prediction.unknown else f"{r.path}: {top}")
    return "\n".join(lines) + "\n"


def _run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from dogclf.errors import ConfigError
    from dogclf.fsutil import atomic_write_text
    from dogclf.prediction import collect_images

    inputs = list(args.inputs)
    model = None if args.endpoint else inputs.pop(0)
    if not inputs:
        raise ConfigError(
            "give the images to predict: dogclf predict MODEL FILES_OR_DIR... "
            "(or dogclf predict --endpoint URL FILES_OR_DIR...)"
        )
    if not 1 <= args.topk <= MAX_TOPK:
        raise ConfigError(f"--topk must be between 1 and {MAX_TOPK}, got {args.topk}")
    if args.batch_size < 1 or args.concurrency < 1:
        raise ConfigError("--batch-size and --concurrency must be at least 1")
    if not 0 <= args.min_confidence <= 1:
        raise ConfigError(f"--min-confidence must be between 0 and 1, got {args.min_confidence}")
    if args.endpoint and args.raw_scores:
        raise ConfigError("--raw-scores applies offline only; start the endpoint with `dogclf serve --raw-scores`")
    output = Path(args.output) if args.output else None
    if output is not None and output.suffix not in (".csv", ".jsonl"):
        raise ConfigError(f"--output must end in .csv or .jsonl, got {output}")
    files = collect_images(inputs)
    with tqdm(total=len(files), unit="img", desc="predict", file=sys.stderr, disable=None) as bar:
        if args.endpoint:
            from dogclf.serve.client import EndpointClient

            with EndpointClient(args.endpoint) as client:
                results = client.predict_files(files, args.topk, args.concurrency, on_result=lambda: bar.update(1))
            results = [_with_threshold(r, args.min_confidence) for r in results]
        else:
            results = _offline(model, files, args, bar)
    if output is not None:
        answer = args.min_confidence > 0
        text = _csv(results, args.topk, answer) if output.suffix == ".csv" else _jsonl(results)
        atomic_write_text(output, text)
        print(f"wrote {len(results)} predictions to {output}", file=sys.stderr)
    else:
        sys.stdout.write(_jsonl(results) if args.json else _text(results))
    failed = [r for r in results if r.error]
    if failed:
        print(f"{len(failed)} of {len(results)} images could not be predicted", file=sys.stderr)
    return 1 if failed else 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `dogclf predict`, offline or against an endpoint."""
    p = sub.add_parser(
        "predict",
        help="top-k breeds for images, offline or through an endpoint",
        description="dogclf predict MODEL FILES_OR_DIR... | dogclf predict --endpoint URL "
        "FILES_OR_DIR...; exits 1 when some image could not be predicted.",
    )
    p.add_argument("inputs", nargs="+", metavar="[MODEL] FILES_OR_DIR", help="model (unless --endpoint), then images")
    p.add_argument("--endpoint", metavar="URL", help="send the images to this endpoint (e.g. http://127.0.0.1:8080)")
    p.add_argument("--topk", type=int, default=5, help="classes per image (default 5)")
    p.add_argument("--json", action="store_true", help="print one JSON object per image")
    p.add_argument("--output", help="write predictions to a .csv or .jsonl file")
    p.add_argument("--batch-size", type=int, default=32, help="offline batch size (default 32)")
    p.add_argument("--precision", default="auto", choices=PRECISIONS, help="offline precision")
    add_backend_option(p)
    p.add_argument("--concurrency", type=int, default=4, help="parallel requests with --endpoint (default 4)")
    p.add_argument(
        "--min-confidence",
        type=float,
        default=0.0,
        metavar="P",
        help='answer "unknown" when the top calibrated probability is below P (default 0: always answer)',
    )
    p.add_argument("--raw-scores", action="store_true", help="offline: ignore the model's fitted temperature (T=1)")
    p.set_defaults(func=_run)
