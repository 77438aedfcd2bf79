"""Convert a Hugging Face WavLM/HuBERT/wav2vec 2.0 directory or an original/s3prl WavLM
checkpoint ``{"cfg", "model"}`` (e.g. Microsoft's WavLM-Base+.pt) into the project's WavLM
checkpoint, so pruning and the diarization frontend need only one model class and one format.
"""

from __future__ import annotations

from espnet_prune.utils.cli import file_to_file_command, run_main


def target():
    from espnet_prune.wavlm.convert import convert_file

    return convert_file


main = file_to_file_command(
    target, __doc__,
    input_help="HF model directory (config.json + weights) or {cfg,model} .pt")


if __name__ == "__main__":
    run_main(main)
