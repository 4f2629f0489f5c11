"""The `striate` command line."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="striate", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("train", help="train a model (coming soon)")
    args = parser.parse_args(argv)
    print(f"striate {args.command}: coming soon", file=sys.stderr)
    return 1
