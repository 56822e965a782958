"""Command-line interface: `dogclf <command>`; each command lives in dogclf.cli.commands."""
