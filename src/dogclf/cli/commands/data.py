"""`dogclf data make-sample` and `dogclf data check`."""

from __future__ import annotations

import argparse
import json

from dogclf.cli.options import library_defaults


def _make_sample(args: argparse.Namespace) -> int:
    from dogclf.data.synthetic import make_dataset

    root = make_dataset(
        args.out,
        classes=args.classes,
        per_class=args.per_class,
        size=args.size,
        seed=args.seed,
        overwrite=args.overwrite,
    )
    print(f"sample dataset: {root} ({args.classes} classes, {args.per_class} train images each, {args.size} px)")
    return 0


def _check(args: argparse.Namespace) -> int:
    from dogclf.data import discover, scan_dataset

    layout = discover(args.data)
    report = scan_dataset(layout, args.max_pixels) if args.max_pixels else scan_dataset(layout)
    counts = report.counts  # usable images only; bad files are listed (and counted) apart
    found = layout.counts()
    bad_counts = {s: [a - b for a, b in zip(found[s], counts[s], strict=True)] for s in counts}
    if args.json:
        summary = {
            "root": str(layout.root),
            "classes": layout.classes,
            "counts": counts,
            "bad_counts": bad_counts,
            "split_from_flat": layout.split_from_flat,
            "fingerprint": report.fingerprint,
            "bad": [{"path": str(b.path), "reason": b.reason} for b in report.bad],
        }
        print(json.dumps(summary, indent=2))
    else:
        splits = list(counts)
        print(
            f"{layout.root}: {len(layout.classes)} classes"
            + (" (flat folder, split by ratio)" if layout.split_from_flat else "")
        )
        width = max(len(c) for c in layout.classes)
        print(f"  {'class':<{width}}  " + "  ".join(f"{s:>6}" for s in splits))
        for i, name in enumerate(layout.classes):
            print(f"  {name:<{width}}  " + "  ".join(f"{counts[s][i]:>6}" for s in splits))
        print(f"  {'total':<{width}}  " + "  ".join(f"{sum(counts[s]):>6}" for s in splits))
        if report.bad:
            print(f"  {'(bad)':<{width}}  " + "  ".join(f"{sum(bad_counts[s]):>6}" for s in splits))
        if report.bad:
            print(f"{len(report.bad)} bad image(s):\n{report.format_bad()}")
        else:
            print(f"all images decode; fingerprint {report.fingerprint}")
    return 1 if report.bad else 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `dogclf data make-sample` and `dogclf data check`."""
    data = sub.add_parser("data", help="make a sample dataset or check a dataset")
    cmds = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    p = cmds.add_parser("make-sample", help="generate a small learnable ImageFolder dataset (train/valid/test)")
    p.add_argument("out", help="folder to create")
    from dogclf.data.synthetic import make_dataset

    d = library_defaults(make_dataset)
    p.add_argument("--classes", type=int, default=d["classes"], help=f"number of breeds (default {d['classes']})")
    p.add_argument(
        "--per-class", type=int, default=d["per_class"], help=f"training images per class (default {d['per_class']})"
    )
    p.add_argument("--size", type=int, default=d["size"], help=f"image side in pixels (default {d['size']})")
    p.add_argument("--seed", type=int, default=d["seed"], help=f"random seed (default {d['seed']})")
    p.add_argument("--overwrite", action="store_true", help="replace an existing folder")
    p.set_defaults(func=_make_sample)
    p = cmds.add_parser("check", help="class counts per split and every bad image by name (exit 1 if any)")
    p.add_argument("data", help="dataset root")
    p.add_argument("--max-pixels", type=int, help="reject images with more pixels than this")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_check)
