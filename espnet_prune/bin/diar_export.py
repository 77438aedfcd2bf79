"""Export a trained segmentation model (WavLM + Conformer + powerset head) to ONNX.

The graph maps ``speech [B, T]`` float32 and ``lengths [B]`` int64 to the powerset
log-probabilities ``log_probs [B, F, C]`` (batch and time axes dynamic); the file carries the
frame geometry, powerset sizes and a fingerprint of the model's weights and config as metadata,
so ``diar_inference --backend onnxruntime --model_file OUTPUT`` needs no train config (and
refuses one of another model). ``--quantize int8``: onnxruntime's dynamic int8
quantisation of the matrix-product weights. The export is :func:`espnet_prune.infer.export
.export_model_file`; it prints the largest log-prob difference of the written file against
PyTorch on an example batch.
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
    return parser


def target():
    from espnet_prune.infer.export import export_model_file

    return export_model_file


main = command(get_parser, target)


if __name__ == "__main__":
    run_main(main)
