#!/usr/bin/env python3
"""Check that the default speaker encoder (resemblyzer) tells the synthetic voices apart.

Clustering in inference relies on it: if espeak voices embedded too alike, the corpus would
test the embedding model rather than the diarization model. Prints cosine similarities of
same-speaker vs different-speaker utterance pairs and a nearest-centroid identification rate.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from espeak_synth import EspeakSynthesizer, list_voice_variants  # this script's directory
from simulate_meetings import (
    SAMPLE_RATE,
    make_speakers,
    split_variants,
    synthesize_utterance,
)


def speaker_separation(embeddings: np.ndarray, labels: np.ndarray) -> dict:
    """Same/different-speaker cosine statistics and leave-one-out nearest-centroid accuracy."""
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    cosine = unit @ unit.T
    same = labels[:, None] == labels[None, :]
    off_diagonal = ~np.eye(len(labels), dtype=bool)
    correct = 0
    for i in range(len(labels)):
        scores = {}
        for label in np.unique(labels):
            members = (labels == label) & (np.arange(len(labels)) != i)
            centroid = unit[members].mean(axis=0)
            scores[label] = float(unit[i] @ centroid / np.linalg.norm(centroid))
        correct += max(scores, key=scores.get) == labels[i]
    return {
        "same_speaker_cosine": float(cosine[same & off_diagonal].mean()),
        "other_speaker_cosine": float(cosine[~same].mean()),
        "other_speaker_cosine_p95": float(np.percentile(cosine[~same], 95)),
        "same_speaker_cosine_p5": float(np.percentile(cosine[same & off_diagonal], 5)),
        "nearest_centroid_accuracy": correct / len(labels),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--split", default="test", choices=["train", "dev", "test"])
    parser.add_argument("--utterances_per_speaker", type=int, default=4)
    parser.add_argument("--max_speakers", type=int, default=None, help="check only the first N")
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--dev_variants", type=int, default=12)
    parser.add_argument("--test_variants", type=int, default=16)
    args = parser.parse_args(argv)

    from resemblyzer import VoiceEncoder

    rng = np.random.default_rng(args.seed)
    variants = split_variants(
        list_voice_variants(), args.seed, args.dev_variants, args.test_variants
    )[args.split]
    speakers = make_speakers(args.split, variants, rng)[: args.max_speakers]
    synth = EspeakSynthesizer(SAMPLE_RATE)
    encoder = VoiceEncoder(device="cpu", verbose=False)
    embeddings, labels = [], []
    for index, speaker in enumerate(speakers):
        for _ in range(args.utterances_per_speaker):
            audio = synthesize_utterance(synth, speaker, rng)
            embeddings.append(encoder.embed_utterance(audio))
            labels.append(index)
    result = speaker_separation(np.stack(embeddings), np.array(labels))
    result["speakers"] = len(speakers)
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
