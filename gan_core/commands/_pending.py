"""Placeholder for sub-commands whose feature has not landed yet."""

from __future__ import annotations

import sys


def not_yet_available(feature: str, issue: str):
    def run(args) -> int:
        print(
            f"latent-studio {args.command}: not yet available ({feature} lands with the {issue} issue)",
            file=sys.stderr,
        )
        return 3

    return run
