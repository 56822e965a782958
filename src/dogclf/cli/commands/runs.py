"""`dogclf runs compare`."""

from __future__ import annotations

import argparse


def _compare(args: argparse.Namespace) -> int:
    from dogclf.runs import compare_runs, comparison_table, write_comparison

    comparison = compare_runs(args.runs)
    print(comparison_table(comparison), end="")
    if args.output:
        csv_path, png_path = write_comparison(comparison, args.output)
        print(f"\nwrote {csv_path} and {png_path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `dogclf runs` and its actions."""
    p = sub.add_parser("runs", help="look at finished runs side by side")
    runs = p.add_subparsers(dest="runs_command", metavar="ACTION", required=True)
    t = runs.add_parser(
        "compare",
        help="config differences and final metrics of runs; a CSV and validation curves",
        description="Print the config fields that differ between the runs (equal fields hidden) and their final "
        "metrics; write compare.csv and compare.png (valid loss and top-1 per epoch) into --output.",
    )
    t.add_argument("runs", nargs="+", metavar="RUN", help="run folders (runs/NAME), at least two")
    t.add_argument(
        "-o",
        "--output",
        default="runs-compare",
        help="folder for compare.csv and compare.png (default runs-compare; '' to only print)",
    )
    t.set_defaults(func=_compare)
