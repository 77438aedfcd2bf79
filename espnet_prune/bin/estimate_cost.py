"""Compute and time cost of a recipe's stages at full scale (measured on this CPU, extrapolated).

The options and what is printed: ``--help``, or :mod:`espnet_prune.measure.cost`.
"""

from __future__ import annotations

from espnet_prune.utils.cli import run_main


def main(argv: list[str] | None = None) -> int:
    from espnet_prune.measure.cost import main as measure

    measure(argv)
    return 0


if __name__ == "__main__":
    run_main(main)
