"""`dogclf` entry point: discovers command modules, turns user errors into one line and exit code 2."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys
from collections.abc import Sequence

from dogclf import __version__, timings
from dogclf.cli import process
from dogclf.errors import DogclfError


def build_parser() -> argparse.ArgumentParser:
    """The full parser; every module in dogclf.cli.commands adds its subcommands via register()."""
    from dogclf.cli import commands

    parser = argparse.ArgumentParser(
        prog="dogclf", description="Fine-tune, tune, debug, profile and serve image classifiers."
    )
    parser.add_argument("--version", action="version", version=f"dogclf {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        importlib.import_module(f"{commands.__name__}.{info.name}").register(sub)
    return parser


QUIET_LOGGERS = ("httpx", "botocore", "boto3", "sagemaker", "sagemaker.config")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse argv and run the chosen command; returns the process exit code.

    Without `argv` (the console script, `python -m dogclf.cli.main`) main owns the process: commands load
    their heavy modules with the garbage collector paused, and the heap is frozen for the exit (cli.process).
    """
    timings.mark("cli_start")
    if argv is None:
        process.take_ownership()
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s", stream=sys.stderr, force=True
    )
    for chatty in QUIET_LOGGERS:  # INFO on every request, credential lookup and endpoint resolution
        logging.getLogger(chatty).setLevel(logging.WARNING)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at interpreter exit
        timings.mark("command_done")
        return code
    except BrokenPipeError:
        # The reader (e.g. `| head`) is gone: point stdout at devnull so the exit flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a command killed by a closed pipe
    except DogclfError as exc:
        print(f"dogclf: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dogclf: interrupted", file=sys.stderr)
        return 130
    finally:
        process.before_exit()


if __name__ == "__main__":
    sys.exit(main())
