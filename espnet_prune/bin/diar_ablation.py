"""Where a trained model's pipeline DER comes from: full pipeline, oracle segmentation (real
embeddings + clustering), oracle clustering (real segmentation), and both oracles, on a data
dir with a reference RTTM. Prints a table; ``--json`` writes the numbers.

    python -m espnet_prune.bin.diar_ablation --model_file EXP/valid.loss.ave.pth \\
        --train_config EXP/config.yaml --data_dir dump/test --config conf/inference.yaml
"""

from __future__ import annotations

import argparse
import json

from espnet_prune.utils.cli import run_main


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model_file", required=True)
    parser.add_argument("--train_config", required=True)
    parser.add_argument("--data_dir", required=True, help="wav.scp + rttm (+ uem)")
    parser.add_argument("--config", default=None, help="inference YAML (diar_inference's)")
    parser.add_argument("--json", default=None, help="write the results here")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    from espnet_prune.bin.diar_inference import (
        build_pipeline_parts,
        load_inference_config,
        load_model,
        model_segmentation,
    )
    from espnet_prune.infer.ablation import ablate, table
    from espnet_prune.utils.datadir import validate_data_dir, write_text

    data_dir = validate_data_dir(args.data_dir)
    config, embedding, clustering = build_pipeline_parts(load_inference_config(args.config), {})
    model = load_model(args.train_config, args.model_file, "cpu")
    segmentation, to_multilabel = model_segmentation(model, "cpu")
    results = ablate(data_dir, segmentation, to_multilabel, model.powerset, model.frame_shift,
                     model.frame_length, embedding, clustering, config)
    print(table(results))
    if args.json:
        write_text(args.json, json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    run_main(main)
