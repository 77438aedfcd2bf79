"""Estimate the PLDA that VBx clustering needs, from training data or from saved embeddings.

From a data dir (``wav.scp`` + ``rttm``): every reference speaker's single-speaker speech is cut
into pieces of ``--segment`` seconds; each piece is embedded with the extractor inference uses
(``--embedding``, ``--embedding_conf`` as YAML/JSON mapping) and labelled by
``<recording>/<speaker>``. From ``--embeddings FILE.npz`` (arrays ``embeddings [N, D]`` and
``speakers [N]``): those. Writes ``--output plda.npz`` for ``clustering: {name: vbx, plda: ...}``.
"""

from __future__ import annotations

import argparse

import numpy as np

from espnet_prune.errors import DataError
from espnet_prune.utils.cli import run_main


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


def single_speaker_spans(segments, min_length: float) -> dict[str, list[tuple[float, float]]]:
    """Per speaker, the stretches where only that speaker talks (at least ``min_length`` s)."""
    events = sorted({0.0} | {s.start for s in segments} | {s.end for s in segments})
    spans: dict[str, list[tuple[float, float]]] = {}
    for lo, hi in zip(events[:-1], events[1:]):
        middle = 0.5 * (lo + hi)
        talking = {s.speaker for s in segments if s.start <= middle < s.end}
        if len(talking) == 1:
            (speaker,) = talking
            own = spans.setdefault(speaker, [])
            if own and abs(own[-1][1] - lo) < 1e-6:
                own[-1] = (own[-1][0], hi)
            else:
                own.append((lo, hi))
    return {spk: [(a, b) for a, b in s if b - a >= min_length] for spk, s in spans.items()}


def embed_data_dir(args, extractor) -> tuple[np.ndarray, np.ndarray]:
    from tqdm import tqdm

    from espnet_prune.utils.audio import read_audio
    from espnet_prune.utils.datadir import validate_data_dir

    data = validate_data_dir(args.data_dir, require_rttm=True)
    embeddings, speakers = [], []
    for rec in tqdm(data.recordings, desc="embeddings", unit="rec"):
        audio = read_audio(data.wavs[rec])
        for speaker, spans in sorted(single_speaker_spans(data.rttm.get(rec, []),
                                                          args.min_segment).items()):
            pieces = []
            for start, end in spans:
                edges = np.arange(start, end - args.min_segment + 1e-9, args.segment)
                for lo in edges:
                    hi = min(lo + args.segment, end)
                    pieces.append(audio[int(lo * 16000) : int(hi * 16000)])
            pieces = pieces[: args.max_segments_per_speaker]
            if pieces:
                embeddings.append(np.asarray(extractor(pieces)))
                speakers += [f"{rec}/{speaker}"] * len(pieces)
    if not embeddings:
        raise DataError(f"{args.data_dir}: no single-speaker speech of {args.min_segment} s "
                        "or more in the rttm")
    return np.concatenate(embeddings), np.asarray(speakers)


def load_embeddings(path: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path) as data:
            return np.asarray(data["embeddings"]), np.asarray(data["speakers"]).astype(str)
    except FileNotFoundError:
        raise DataError(f"{path}: embeddings file does not exist") from None
    except KeyError as exc:
        raise DataError(f"{path}: needs arrays 'embeddings' and 'speakers' ({exc})") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read embeddings ({exc})") from None


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    from espnet_prune.infer.plda import estimate_plda

    if args.embeddings:
        embeddings, speakers = load_embeddings(args.embeddings)
        source = args.embeddings
    else:
        import yaml

        from espnet_prune.errors import ConfigError
        from espnet_prune.infer.embeddings import build_embedding

        conf = yaml.safe_load(args.embedding_conf) or {}
        if not isinstance(conf, dict):
            raise ConfigError(f"--embedding_conf must be a mapping, got {args.embedding_conf!r}")
        embeddings, speakers = embed_data_dir(args, build_embedding(args.embedding, **conf))
        source = args.data_dir
    if embeddings.ndim != 2 or len(embeddings) != len(speakers):
        raise DataError(f"{source}: expected embeddings [N, D] with N speaker labels, got "
                        f"{embeddings.shape} and {len(speakers)} labels")
    if args.save_embeddings:
        np.savez(args.save_embeddings, embeddings=embeddings, speakers=speakers)
    plda = estimate_plda(embeddings, speakers, lda_dim=args.lda_dim)
    plda.save(args.output)
    print(f"PLDA from {len(embeddings)} embeddings of {len(set(speakers.tolist()))} speakers "
          f"(LDA dim {plda.lda_dim}) -> {args.output}")
    return 0


if __name__ == "__main__":
    run_main(main)
