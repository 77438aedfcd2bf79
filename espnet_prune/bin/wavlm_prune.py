"""Physically prune a masked WavLM checkpoint: units whose deterministic hard-concrete gate is 0
are removed and the kept gate values are folded into the next layer, so the result computes
what the masked model computes in eval mode, with fewer parameters and MACs.
"""

from __future__ import annotations

import argparse
import json

from espnet_prune.utils.cli import run_main


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True, help="masked checkpoint (with gates)")
    parser.add_argument("--output", required=True,
                        help="pruned checkpoint (written via a temporary file and a rename)")
    return parser


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    from espnet_prune.errors import CheckpointError
    from espnet_prune.utils.io import check_output_file
    from espnet_prune.wavlm import load_wavlm, save_wavlm

    check_output_file(args.output, make_parents=True)
    model = load_wavlm(args.input)
    if not model.config.pruning_units:
        raise CheckpointError(f"{args.input}: config has no 'pruning_units' (not a masked "
                              "checkpoint); nothing to prune")
    before = model.structure("actual")
    from espnet_prune.wavlm.counting import count_params

    params_before = count_params(model.config, before)
    model.prune()
    save_wavlm(model, args.output)
    print(json.dumps({"output": args.output, "params_before": params_before,
                      "params": model.num_params(), "macs_per_second": model.macs_per_second()}))
    return 0


if __name__ == "__main__":
    run_main(main)
