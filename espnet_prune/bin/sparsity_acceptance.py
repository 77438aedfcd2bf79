"""Prune a teacher on a data dir and report whether the sparsity lands on its target.

The options and what is printed: ``--help``, or :mod:`espnet_prune.measure.sparsity_acceptance`.
"""

from __future__ import annotations

from espnet_prune.utils.cli import run_main


def main(argv: list[str] | None = None) -> int:
    from espnet_prune.measure.sparsity_acceptance import main as measure

    measure(argv)
    return 0


if __name__ == "__main__":
    run_main(main)
