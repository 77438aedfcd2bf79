"""Export a trained segmentation model (WavLM + Conformer + powerset head) to ONNX.

The graph maps ``speech [B, T]`` float32 and ``lengths [B]`` int64 to the powerset
log-probabilities ``log_probs [B, F, C]`` (batch and time axes dynamic); the file carries the
frame geometry, powerset sizes and a fingerprint of the model's weights and config as metadata,
so ``diar_inference --backend onnxruntime --model_file OUTPUT`` needs no train config (and
refuses one of another model). ``--quantize int8``: onnxruntime's dynamic int8
quantisation of the matrix-product weights. With ``--pack ARCHIVE`` the ONNX file is also
packed as ``diar_pack`` packs a model (``Diarizer.from_pretrained(ARCHIVE)`` runs it in
onnxruntime). The export is :func:`espnet_prune.zoo.pack.export_and_pack`; it prints the
largest log-prob difference of the written file against PyTorch on an example batch.
"""

from __future__ import annotations

import argparse

from espnet_prune.utils.cli import command, run_main


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model_file", required=True, help="e.g. EXP/valid.loss.ave.pth")
    parser.add_argument("--train_config", required=True, help="EXP/config.yaml")
    parser.add_argument("--output", required=True,
                        help="output .onnx (written via a temporary file and a rename)")
    parser.add_argument("--quantize", default="none", choices=("none", "int8"),
                        help="int8: dynamic int8 quantisation of the matrix-product weights")
    parser.add_argument("--pack", default=None, metavar="ARCHIVE",
                        help="also pack the ONNX file with the exp dir's config.yaml, "
                        "inference.yaml and a model card (as diar_pack; .zip, .tar.gz, .tgz)")
    parser.add_argument("--inference_config", default=None,
                        help="with --pack: default the inference.yaml beside the model")
    return parser


def target():
    from espnet_prune.zoo.pack import export_and_pack

    return export_and_pack


main = command(get_parser, target)


if __name__ == "__main__":
    run_main(main)
