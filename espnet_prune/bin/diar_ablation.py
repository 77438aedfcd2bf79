"""Where a trained model's pipeline DER comes from: full pipeline, oracle segmentation (real
embeddings + clustering), oracle clustering (real segmentation), and both oracles, on a data
dir with a reference RTTM. Prints a table; ``--json`` writes the numbers.

    python -m espnet_prune.bin.diar_ablation --model_file EXP/valid.loss.ave.pth \\
        --train_config EXP/config.yaml --data_dir dump/test --config conf/inference.yaml
"""

from __future__ import annotations

import argparse

from espnet_prune.utils.cli import command, run_main


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model_file", required=True)
    parser.add_argument("--train_config", required=True)
    parser.add_argument("--data_dir", required=True, help="wav.scp + rttm (+ uem)")
    parser.add_argument("--config", default=None, help="inference YAML (diar_inference's)")
    parser.add_argument("--json", dest="json_path", help="write the results here")
    return parser


def target():
    from espnet_prune.eval.ablation import ablate_model

    return ablate_model


main = command(get_parser, target)


if __name__ == "__main__":
    run_main(main)
