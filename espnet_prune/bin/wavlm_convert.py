"""Convert a Hugging Face WavLM/HuBERT/wav2vec 2.0 directory or an original/s3prl WavLM
checkpoint ``{"cfg", "model"}`` (e.g. Microsoft's WavLM-Base+.pt) into the project's WavLM
checkpoint, so pruning and the diarization frontend need only one model class and one format.
"""

from __future__ import annotations

import argparse
import json

from espnet_prune.utils.cli import run_main


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True,
                        help="HF model directory (config.json + weights) or {cfg,model} .pt")
    parser.add_argument("--output", required=True,
                        help="output .pt (written via a temporary file and a rename)")
    return parser


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    from espnet_prune.utils.io import check_output_file
    from espnet_prune.wavlm import save_wavlm
    from espnet_prune.wavlm.convert import convert

    check_output_file(args.output, make_parents=True)  # before the (slow) conversion
    model = convert(args.input)
    save_wavlm(model, args.output)
    print(json.dumps({"output": args.output, "params": model.num_params(),
                      "num_layers": model.config.num_layers,
                      "embed_dim": model.config.embed_dim}))
    return 0


if __name__ == "__main__":
    run_main(main)
