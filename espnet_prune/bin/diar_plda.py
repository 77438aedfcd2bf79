"""Estimate the PLDA that VBx clustering needs, from training data or from saved embeddings.

From a data dir (``wav.scp`` + ``rttm``): every reference speaker's single-speaker speech is cut
into pieces of ``--segment`` seconds; each piece is embedded with the extractor inference uses
(``--embedding``, ``--embedding_conf`` as YAML/JSON mapping) and labelled by
``<recording>/<speaker>``. From ``--embeddings FILE.npz`` (arrays ``embeddings [N, D]`` and
``speakers [N]``): those. Writes ``--output plda.npz`` for ``clustering: {name: vbx, plda: ...}``.
"""

from __future__ import annotations

import argparse

from espnet_prune.utils.cli import command, run_main


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data_dir", help="Kaldi-style dir with wav.scp and rttm")
    source.add_argument("--embeddings", help="npz with 'embeddings' and 'speakers'")
    parser.add_argument("--output", required=True, help="PLDA file to write (.npz)")
    parser.add_argument("--lda_dim", type=int, default=128, help="the recipe's 128")
    parser.add_argument("--embedding", default="resemblyzer",
                        choices=("resemblyzer", "wespeaker_resnet34"))
    parser.add_argument("--embedding_conf", default="{}",
                        help="extractor options, e.g. '{checkpoint: wespeaker/}'")
    parser.add_argument("--segment", type=float, default=3.0, help="piece length (s)")
    parser.add_argument("--min_segment", type=float, default=1.0,
                        help="shorter single-speaker stretches are not used (s)")
    parser.add_argument("--max_segments_per_speaker", type=int, default=50)
    parser.add_argument("--save_embeddings", default=None,
                        help="also write the embeddings and labels here (.npz)")
    return parser


def target():
    from espnet_prune.infer.plda import train_plda

    return train_plda


main = command(get_parser, target)


if __name__ == "__main__":
    run_main(main)
