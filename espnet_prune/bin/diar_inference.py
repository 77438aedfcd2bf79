"""Diarize every recording of a wav.scp with a trained powerset EEND model.

Recordings come from a wav.scp (``--wav_scp``) or are audio files (``--audio a.wav b.flac``).
Writes ``OUTPUT/rttm`` (all recordings) and ``OUTPUT/rttm_per_recording/<rec>.rttm``. A
recording in which nothing is detected gets an empty per-recording file and no lines in
``rttm``. ``--config`` is a YAML file with the fields of
:class:`espnet_prune.infer.pipeline.InferenceConfig` plus ``embedding: {name, conf}``
(``resemblyzer``, or ``wespeaker_resnet34`` with ``conf: {checkpoint: DIR_OR_FILE}``) and
``clustering: {name: ahc|vbx, ...}`` (VBx needs ``plda: FILE.npz`` from ``diar_plda``).
The model is built from ``train_config`` (:mod:`espnet_prune.diar.build`, without ESPnet's
task) with ``model_file`` read without unpickling and loaded strictly, or,
with ``--backend onnxruntime``, the ONNX file ``diar_export`` wrote (its metadata gives the
frame geometry and powerset; see :mod:`espnet_prune.infer.export`).
The run itself is :func:`espnet_prune.infer.run.diarize`.
"""

from __future__ import annotations

import argparse

from espnet_prune.utils.cli import command, run_main

BACKENDS = ("pytorch", "onnxruntime")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model_file", required=True,
                        help="e.g. EXP/valid.loss.ave.pth; with --backend onnxruntime the "
                        ".onnx file diar_export wrote")
    parser.add_argument("--train_config", default=None,
                        help="EXP/config.yaml (required with --backend pytorch; with "
                        "onnxruntime optional: it must be the config the ONNX file was "
                        "exported from (its fingerprint in the file's metadata)")
    parser.add_argument("--backend", default="pytorch", choices=BACKENDS,
                        help="run the segmentation model in PyTorch or, exported, in "
                        "onnxruntime (CPU)")
    parser.add_argument("--wav_scp", default=None,
                        help="a 'key path' list of recordings (or use --audio)")
    parser.add_argument("--audio", nargs="+", default=None, metavar="FILE",
                        help="audio files to diarize, each named by its file name without "
                        "the suffix (instead of --wav_scp)")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--config", default=None,
                        help="inference YAML (see module docstring); default: the "
                        "inference.yaml beside the model file, if there is one, else the "
                        "built-in defaults")
    parser.add_argument("--ngpu", type=int, default=0, choices=(0, 1))
    parser.add_argument(
        "--num_speakers", type=int, default=None,
        help="exact speaker count (>= 1); fewer with a warning when the recording has fewer "
        "distinct speaker embeddings",
    )
    parser.add_argument("--min_speakers", type=int, default=None, help="lower bound (>= 1)")
    parser.add_argument(
        "--max_speakers", type=int, default=None,
        help="upper bound (>= min_speakers); with --num_speakers the count must lie inside",
    )
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")
    return parser


def target():
    from espnet_prune.infer.run import diarize

    return diarize


main = command(get_parser, target)


if __name__ == "__main__":
    run_main(main)
