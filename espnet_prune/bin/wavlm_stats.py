"""Parameters and MACs of a (pruned) WavLM, in the paper's counting convention.

MODEL is a checkpoint (``espnet_prune.wavlm`` format; a masked checkpoint is counted as the
model its gates would give) or a preset name (base_plus, base, large, tiny, base_plus_s80).
See :mod:`espnet_prune.wavlm.counting` for what is counted.
"""

from __future__ import annotations

import argparse

from espnet_prune.utils.cli import command, run_main


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="checkpoint path or preset name")
    return parser


def target():
    from espnet_prune.wavlm.stats import print_stats

    return print_stats


main = command(get_parser, target)


if __name__ == "__main__":
    run_main(main)
