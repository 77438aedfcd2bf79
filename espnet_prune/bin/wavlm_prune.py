"""Physically prune a masked WavLM checkpoint: units whose deterministic hard-concrete gate is 0
are removed and the kept gate values are folded into the next layer, so the result computes
what the masked model computes in eval mode, with fewer parameters and MACs.
"""

from __future__ import annotations

from espnet_prune.utils.cli import file_to_file_command, run_main


def target():
    from espnet_prune.wavlm.checkpoint import prune_file

    return prune_file


main = file_to_file_command(target, __doc__, input_help="masked checkpoint (with gates)")


if __name__ == "__main__":
    run_main(main)
