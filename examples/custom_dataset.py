"""Train on your own ImageFolder (or a flat folder of class subfolders, split by ratio) and inspect the errors.

python examples/custom_dataset.py --data path/to/images --output runs/mine [--arch resnet50 --weights imagenet]
python examples/custom_dataset.py --sample /tmp/sample --output /tmp/run   # generated data, no download
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import dogclf
from dogclf.config import normalize_freeze


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="train/valid/test class folders, or one flat folder of classes")
    source.add_argument("--sample", type=Path, help="generate a small sample dataset here and use it")
    parser.add_argument("--output", type=Path, required=True, help="run folder to create")
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--weights", default="none", help="imagenet | none | PATH")
    parser.add_argument(
        "--freeze",
        default="nothing",
        type=normalize_freeze,  # the old names head/full still work
        choices=["backbone", "nothing", "staged"],
        help="what stays frozen: backbone (train the head), nothing (train all), staged (head first, then all)",
    )
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--skip-bad-images", action="store_true")
    args = parser.parse_args(argv)

    data = args.data or dogclf.make_dataset(args.sample, classes=4, per_class=24, size=64)
    from dogclf.data import discover, scan_dataset

    layout = discover(data)  # a flat folder is split about 80/10/10 per class, by a seeded hash of each path
    report = scan_dataset(layout)
    print(f"{len(layout.classes)} classes; images per split: { {s: len(v) for s, v in layout.splits.items()} }")
    if report.bad:
        print(f"{len(report.bad)} bad image(s):\n{report.format_bad(limit=20)}")
        if not args.skip_bad_images:
            return 1

    cfg = dogclf.build_config(overrides={
        "data.root": str(data), "data.image_size": args.image_size, "data.skip_bad_images": args.skip_bad_images,
        "model.arch": args.arch, "model.weights": args.weights, "model.freeze": args.freeze,
        "optim.epochs": args.epochs, "optim.lr": 2e-3,
    })  # fmt: skip
    result = dogclf.train(cfg, args.output)
    split = "test" if result.test is not None else "valid"
    evaluation = dogclf.evaluate(result.artifact_dir, data, split=split)
    top5 = "n/a" if evaluation.top5 is None else f"{evaluation.top5:.3f}"  # top-5 needs more than 5 classes
    print(f"{split}: top-1 {evaluation.top1:.3f}, top-5 {top5} on {evaluation.n} images")
    print(f"confusion matrix: {args.output / 'plots' / f'confusion_{split}.png'}")
    print("most confused breeds (true -> predicted: count):")
    for true, predicted, count in evaluation.most_confused(5) or [("-", "-", 0)]:
        print(f"  {true} -> {predicted}: {count}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
