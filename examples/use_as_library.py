"""Use dogclf from another project: build a model, load a saved artifact, predict.

python examples/use_as_library.py MODEL_DIR IMAGE [IMAGE ...]
python examples/use_as_library.py --demo /tmp/demo   # trains a tiny model on generated data first
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

import dogclf
from dogclf.data.preprocess import load_eval_tensor


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?", type=Path, help="a run folder or its model/ folder")
    parser.add_argument("images", nargs="*", type=Path)
    parser.add_argument("--demo", type=Path, help="make sample data and a tiny model in this folder first")
    args = parser.parse_args(argv)

    # 1. A model for your own training code: any registered architecture with a new head.
    net = dogclf.create_model("resnet50", num_classes=133, weights=None, freeze="backbone")
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    print(f"resnet50 for 133 breeds: {trainable:,} trainable parameters with freeze='backbone'")

    if args.demo:
        data = dogclf.make_dataset(args.demo / "data", classes=3, per_class=16, size=32)
        cfg = dogclf.build_config(overrides={"data.root": str(data), "data.image_size": 32, "model.arch": "tiny_cnn",
                                             "model.weights": None, "model.freeze": "nothing", "optim.epochs": 3,
                                             "optim.lr": 0.01})  # fmt: skip
        args.model = dogclf.train(cfg, args.demo / "run").artifact_dir
        args.images = sorted((data / "test").rglob("*.jpg"))[:3]
    if not args.model or not args.images:
        parser.error("give MODEL and IMAGE(s), or --demo DIR")

    # 2. A saved artifact: model + class names + its own preprocessing, loaded with weights_only=True.
    artifact = dogclf.load_artifact(args.model)
    print(f"loaded {artifact.metadata.arch} with {len(artifact.class_names)} classes from {artifact.path}")

    # 3. Predictions with breed names; the same preprocessing the model was trained with.
    for image, pred in zip(args.images, dogclf.predict(artifact, list(args.images), topk=3), strict=True):
        best = ", ".join(f"{label} {p:.2f}" for label, p in zip(pred.labels, pred.probabilities, strict=True))
        print(f"{image.name}: {best}")

    # 4. Raw logits for your own pipeline, from the artifact's preprocessing definition.
    x = torch.stack([load_eval_tensor(image, artifact.preprocess) for image in args.images])
    with torch.inference_mode():
        print(f"logits shape: {tuple(artifact.model(x).shape)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
