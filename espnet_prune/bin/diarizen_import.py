"""Import a released DiariZen model directory (``config.toml`` + ``pytorch_model.bin``, e.g. a
local copy of ``BUT-FIT/diarizen-wavlm-base-s80-md``) as an ESPnet exp dir of our powerset
model: ``config.yaml`` + ``model.pth`` for ``diar_inference`` (and ``diar_train
--init_param``), ``wavlm.pt`` (its WavLM alone, for ``wavlm_stats`` and ``wavlm_bench``),
``inference.yaml`` with DiariZen's window, step, speaker bounds and VBx settings (its ``plda/``
files converted to ``plda.npz``), and ``finetune.yaml``, a ``diar_train`` config for
fine-tuning it.  Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json

from espnet_prune.utils.cli import run_main


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", required=True,
                        help="DiariZen model directory (config.toml, pytorch_model.bin)")
    parser.add_argument("--output_dir", required=True, help="exp dir to write")
    parser.add_argument("--embedding_model", default=None,
                        help="local copy of pyannote/wespeaker-voxceleb-resnet34-LM (directory "
                        "or pytorch_model.bin), written into inference.yaml")
    return parser


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    from espnet_prune.zoo.diarizen import import_diarizen

    summary = import_diarizen(args.model_dir, args.output_dir, args.embedding_model)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    run_main(main)
