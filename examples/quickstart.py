"""The whole local path in plain Python API calls, as `dogclf quickstart` runs it.

sample data -> tune -> train (profiler + debug hook) -> evaluate -> debug rules -> reports -> package
-> local endpoint -> predict.

python examples/quickstart.py --workdir /tmp/qs            # ResNet50 from scratch, a few minutes on a CPU
python examples/quickstart.py --workdir /tmp/qs --classes 3 --per-class 12 --image-size 32 --arch tiny_cnn \\
    --epochs 1 --trials 2 --tune-epochs 1                  # seconds
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import dogclf
from dogclf.debug.engine import evaluate_rules, format_rules
from dogclf.debug.report import write_report as write_debug_report
from dogclf.profile.report import write_report as write_profiler_report
from dogclf.serve.demo import query_local_endpoint
from dogclf.serve.package import package_model
from dogclf.tune import default_space, tune
from dogclf.tune.trial import tuning_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, required=True, help="folder for data, tuning and the run (new)")
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument("--per-class", type=int, default=60, help="training images per class")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--arch", default="resnet50")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--trials", type=int, default=4, help="tuning trials")
    parser.add_argument("--tune-epochs", type=int, default=2, help="epochs per tuning trial")
    args = parser.parse_args(argv)
    if args.workdir.exists() and any(args.workdir.iterdir()):
        parser.error(f"{args.workdir} is not empty; choose a new --workdir")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)

    # 1. Sample data: train/valid/test folders of generated, learnable "breeds".
    data = dogclf.make_dataset(args.workdir / "data", args.classes, args.per_class, size=args.image_size)

    # 2. The training config: from scratch (nothing to download), profiler and smdebug hook on.
    #    With internet: "model.weights": "imagenet" and "model.freeze": "backbone" (trials below then train the
    #    head from cached backbone features when "data.augment" is False).
    cfg = dogclf.build_config(overrides={
        "data.root": str(data), "data.image_size": args.image_size, "model.arch": args.arch,
        "model.weights": None, "model.freeze": "nothing", "optim.epochs": args.epochs, "optim.warmup_epochs": 0.5,
        "profile.enabled": True, "profile.report": False, "debug.enabled": True,
        "debug.save_interval": 50,
    })  # fmt: skip

    # 3. Tune lr and batch size on short runs of that very config, hooks off (tuning_config), over the space
    #    that is sound for its optimizer, freeze mode and weights (AdamW, whole network, from scratch:
    #    lr 1e-3..2e-3; docs/local.md).
    space = default_space(cfg)
    trial_cfg = tuning_config(cfg, args.tune_epochs)  # what `dogclf quickstart` and SageMaker trials turn off
    tuned = tune(trial_cfg, space, args.workdir / "tune", n_trials=args.trials)
    print(f"best trial {tuned.best_trial}: {tuned.best_params} ({space.objective}={tuned.best_value:.4g})")

    # 4. Train with the best values on their config fields: lr -> optim.lr, batch-size -> data.batch_size.
    best = {space.config_fields[name]: value for name, value in tuned.best_params.items()}
    run_dir = args.workdir / "run"
    result = dogclf.train(dogclf.build_config(base=cfg.model_dump(mode="json"), overrides=best), run_dir)

    # 5. Evaluate the saved artifact on the test split.
    test = dogclf.evaluate(result.artifact_dir, data, split="test")
    print(f"valid top-1 {result.valid['top1']:.3f}, test top-1 {test.top1:.3f}")

    # 6. Debugger rules over the tensors the smdebug hook saved.
    print(format_rules(evaluate_rules(run_dir)))

    # 7. Reports: profiler (bottleneck rules, step split, system metrics) and debugger, self-contained HTML.
    print(f"profiler report: {write_profiler_report(run_dir)}")
    print(f"debug report: {write_debug_report(run_dir)}")

    # 8. model.tar.gz in the SageMaker PyTorch layout.
    tarball = package_model(run_dir, run_dir / "model.tar.gz")
    print(f"tarball: {tarball}")

    # 9. Serve the tarball on a local endpoint, send one image, stop the server.
    image = sorted((data / "test").rglob("*.jpg"))[0]
    top3 = query_local_endpoint(tarball, image, topk=3)
    print("endpoint top-3: " + ", ".join(f"{label} {p:.3f}" for label, p in top3))

    # 10. The same image offline.
    prediction = dogclf.predict(result.artifact_dir, [image], topk=3)[0]
    pairs = zip(prediction.labels, prediction.probabilities, strict=True)
    print("predict top-3: " + ", ".join(f"{label} {p:.3f}" for label, p in pairs))
    print(f"run: {run_dir}\nmodel: {result.artifact_dir}\nplots: {run_dir / 'plots'}\ntuning: {tuned.table}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
