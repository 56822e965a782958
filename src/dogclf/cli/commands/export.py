"""`dogclf export`: ONNX / OpenVINO exports of a model, int8 behind an accuracy gate."""

from __future__ import annotations

import argparse

from dogclf.config import CPU_PRECISIONS


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def _print_accuracy(check, name: str) -> None:
    """The accuracy table: eager fp32 beside the export on the held-out split."""
    ece_ref = "n/a" if check.ece_reference is None else f"{check.ece_reference:.4f}"
    ece = "n/a" if check.ece is None else f"{check.ece:.4f}"
    verdict = "passed" if check.passed else "FAILED"
    print(f"accuracy on {check.split} (n={check.n}), the export at runtime precision {check.precision}:")
    print(f"  {'':<16}{'eager fp32':>12}{name:>16}")
    bound = "" if check.drop_upper_points is None else f", 95% upper bound {check.drop_upper_points:.2f}"
    print(
        f"  {'top-1':<16}{check.top1_reference:>12.4f}{check.top1:>16.4f}   drop {check.drop_points:.2f} "
        f"points{bound} (max {check.max_drop_points:g}): {verdict}"
    )
    if check.lost is not None:
        print(f"  {'answers changed':<16}{'':>12}{f'{check.lost} lost, {check.gained} gained':>16}")
    if check.min_n and check.n < check.min_n:
        print(
            f"  WARNING: {check.n} images: one image is {100 / max(check.n, 1):.2g} points; promising a drop of at "
            f"most {check.max_drop_points:g} points needs {check.min_n} images"
        )
    print(f"  {'ECE':<16}{ece_ref:>12}{ece:>16}")
    print(f"  {'agreement':<16}{'':>12}{check.agreement:>16.1%}")
    print(f"  {'max |dlogit|':<16}{'':>12}{check.max_logit_diff or 0.0:>16.4f}")
    if check.forced:
        print(
            f"FORCED: kept although it failed the gate; auto backend selection will not use it "
            f"(ask for it with --backend {name})"
        )


def _run(args: argparse.Namespace) -> int:
    from dogclf.errors import ConfigError

    if args.int8 and not args.calibration_data:
        raise ConfigError("--int8 needs --calibration-data DIR: real images of the model's classes to calibrate on")
    from dogclf.export import export_model

    result = export_model(
        args.model,
        args.format,
        int8=args.int8,
        calibration_data=args.calibration_data,
        eval_data=args.eval_data,
        eval_split=args.eval_split,
        max_drop=args.max_drop,
        force=args.force,
        calibration_images=args.calibration_images,
        precision=args.precision,
    )
    meta = result.metadata
    print(f"exported {meta.name}: {result.folder} ({_size(result.size_bytes)}, {result.seconds:.1f} s)")
    if meta.calibration:
        cal = meta.calibration
        print(f"calibration: {cal['images']} images of {cal['data']}/{cal['split']} ({cal['method']})")
    if meta.accuracy is None:
        print("no accuracy check: give --eval-data DIR (or --calibration-data) to compare it with eager fp32")
    else:
        _print_accuracy(meta.accuracy, meta.name)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `dogclf export`."""
    from dogclf.backends.exports import FORMATS
    from dogclf.export.settings import DEFAULT_CALIBRATION_IMAGES, DEFAULT_MAX_DROP

    p = sub.add_parser(
        "export",
        help="export a model to ONNX or OpenVINO (fp32, or int8 checked against eager fp32)",
        description="Writes MODEL/exports/FORMAT-PRECISION/ (model files + export.json), atomically. With a "
        "dataset, the export is evaluated against eager fp32 on its held-out split and refused (nothing written, "
        "exit 2) when top-1 drops more than --max-drop points. `serve`/`predict` pick gated exports with "
        "--backend auto.",
    )
    p.add_argument("model", metavar="RUN_OR_MODEL", help="run folder or model folder")
    p.add_argument("--format", required=True, choices=FORMATS, help="onnx (onnxruntime) or openvino")
    p.add_argument("--int8", action="store_true", help="post-training static int8 quantization")
    p.add_argument(
        "--calibration-data",
        metavar="DIR",
        help="ImageFolder dataset of the model's classes: its train split calibrates int8, its held-out split "
        "checks accuracy (required with --int8)",
    )
    p.add_argument(
        "--calibration-images",
        type=int,
        default=DEFAULT_CALIBRATION_IMAGES,
        metavar="N",
        help=f"train images to calibrate on, a seeded sample (default {DEFAULT_CALIBRATION_IMAGES})",
    )
    p.add_argument("--eval-data", metavar="DIR", help="dataset to check accuracy on (default: --calibration-data)")
    p.add_argument(
        "--eval-split", choices=["train", "valid", "test"], help="split to check on (default test, else valid)"
    )
    p.add_argument(
        "--max-drop",
        type=float,
        default=DEFAULT_MAX_DROP,
        metavar="POINTS",
        help=f"top-1 points the export may lose against eager fp32 (default {DEFAULT_MAX_DROP})",
    )
    p.add_argument("--force", action="store_true", help="keep an export that fails the gate (auto never uses it)")
    p.add_argument(
        "--precision",
        default="auto",
        choices=CPU_PRECISIONS,
        help="runtime precision the export is checked at (default auto: what serving on this CPU uses)",
    )
    p.set_defaults(func=_run)
