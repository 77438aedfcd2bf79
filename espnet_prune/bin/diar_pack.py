"""Pack a trained model into one archive to share it (ESPnet's packed layout + a model card).

The archive holds ``config.yaml``, the model file, the ``inference.yaml`` it was scored with
(with the speaker-embedding checkpoint / PLDA it names), ``RESULTS.md`` and a ``README.md``
model card; ``meta.yaml`` (ESPnet's) names the files. Load it with
``espnet_prune.Diarizer.from_pretrained(ARCHIVE)``. The packing is
:func:`espnet_prune.zoo.pack.pack_model`.
"""

from __future__ import annotations

import argparse

from espnet_prune.utils.cli import command, run_main


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model_dir", required=True, help="the exp dir (config.yaml, model)")
    parser.add_argument("--output", required=True, help="archive: .zip, .tar.gz or .tgz")
    parser.add_argument("--name", default=None, help="model name (default: the dir's name)")
    parser.add_argument("--model_file", default=None,
                        help="default: the exp dir's valid.loss.ave.pth (or model.pth); an "
                        ".onnx file from diar_export works too")
    parser.add_argument("--inference_config", default=None,
                        help="default: the inference.yaml beside the model")
    parser.add_argument("--scores", default=None,
                        help="scores.json of the recipe (default: MODEL_DIR/../scores.json)")
    parser.add_argument("--results", default=None, help="RESULTS.md to include")
    parser.add_argument("--corpus", default=None, help="training corpus, for the card")
    parser.add_argument("--command", default=None,
                        help="the command that trained the model, for the card")
    parser.add_argument("--licence", default="cc-by-4.0", help="licence of the weights")
    return parser


def target():
    from espnet_prune.zoo.pack import pack_model

    return pack_model


main = command(get_parser, target)


if __name__ == "__main__":
    run_main(main)
