"""Temperature fits on small valid splits of a perfectly calibrated model (true T = 1): how far T and test NLL stray.

Logits are Gaussian (20 classes, `--scale` sets the accuracy) and each label is drawn from softmax(logits), so
T = 1 is exactly right. For each valid size, `--draws` valid splits are fitted with dogclf's fit_temperature
and scored on one large test set; the figures set MIN_FIT_IMAGES / MIN_FIT_ERRORS in dogclf.calibration.

    python benchmarks/bench_temperature.py                 # the table in docs/local.md
    python benchmarks/bench_temperature.py --draws 50      # quicker
"""

from __future__ import annotations

import argparse
import statistics

import torch

from dogclf.calibration import fit_temperature, nll

CLASSES = 20


def _draw(n: int, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    logits = torch.randn(n, CLASSES) * scale
    return logits, torch.multinomial(logits.softmax(1), 1).squeeze(1)


def _row(n: int, scale: float, draws: int, test: tuple[torch.Tensor, torch.Tensor]) -> str:
    base = nll(*test, 1.0)
    temps, excess, errors = [], [], []
    for _ in range(draws):
        logits, labels = _draw(n, scale)
        t = fit_temperature(logits, labels)
        temps.append(t)
        excess.append(nll(*test, t) - base)
        errors.append(int(logits.argmax(1).ne(labels).sum()))
    temps.sort()
    excess.sort()
    low, high, p95 = temps[int(0.05 * draws)], temps[int(0.95 * draws) - 1], excess[int(0.95 * draws) - 1]
    return (
        f"| {scale:g} | {n} | {statistics.mean(errors):.1f} | {low:.2f}-{high:.2f} | "
        f"+{statistics.mean(excess):.3f} | +{p95:.3f} |"
    )


def main() -> None:
    """Print the table: scale, valid images, mean errors, T 5-95%, mean and p95 test NLL excess."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--sizes", type=int, nargs="+", default=[6, 20, 30, 50, 100, 200])
    parser.add_argument("--scales", type=float, nargs="+", default=[3.0, 5.0])
    args = parser.parse_args()
    torch.manual_seed(0)
    print("| logit scale | valid images | errors (mean) | fitted T, 5-95% | test NLL excess | p95 |")
    print("|---|---|---|---|---|---|")
    for scale in args.scales:
        test = _draw(20_000, scale)
        for n in args.sizes:
            print(_row(n, scale, args.draws, test), flush=True)


if __name__ == "__main__":
    main()
