"""DER of the WeSpeaker trunk-per-recording option against the per-window reference.

The options and what is printed: ``--help``, or :mod:`espnet_prune.measure.trunk_option_der`.
"""

from __future__ import annotations

from espnet_prune.utils.cli import run_main


def main(argv: list[str] | None = None) -> int:
    from espnet_prune.measure.trunk_option_der import main as measure

    measure(argv)
    return 0


if __name__ == "__main__":
    run_main(main)
