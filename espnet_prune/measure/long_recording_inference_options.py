"""DER and peak memory of two inference options on a long generated meeting: the clustering
subsample (``max_cluster_embeddings``; the reference clusters every embedding) and the frame
times (``frame_times``: "middle", the reference's, or "hop", 10 ms earlier).

The meeting (default 50 min, 7 speakers, uneven shares of speech, one speaker with three short
turns only, overlaps) is driven by oracle segmentation (the reference RTTM as the model's hard
powerset decisions, ``espnet_prune.infer.oracle``) and by synthetic speaker embeddings: a unit
direction per speaker plus Gaussian noise (0.08 per dimension, 32 dimensions; the cosine
similarity of two embeddings of one speaker is ~0.8, of two speakers ~0), scaled by a random
norm, the same noise for the same (window, speaker) in every run. Each setting runs in its own
process, so ``ru_maxrss`` is that setting's peak. DER: collar 0, overlap scored, pyannote.metrics.

    python -m espnet_prune.bin.long_recording_inference_options --json long_options.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import time

SETTINGS = {
    "reference (no subsample, middle)": {"max_cluster_embeddings": 0, "frame_times": "middle"},
    "subsample 6000 (middle)": {"max_cluster_embeddings": 6000, "frame_times": "middle"},
    "subsample 3000 (middle)": {"max_cluster_embeddings": 3000, "frame_times": "middle"},
    "no subsample, hop times": {"max_cluster_embeddings": 0, "frame_times": "hop"},
}
RATE = 16000


def meeting(minutes: float, num_speakers: int, seed: int):
    """Noise audio (every window distinct) and reference turns."""
    import numpy as np

    from espnet_prune.utils.rttm import RttmSegment

    rng = np.random.default_rng(seed)
    duration = minutes * 60.0
    audio = (0.05 * rng.standard_normal(int(duration * RATE))).astype(np.float32)
    weights = rng.dirichlet(np.full(num_speakers - 1, 1.0))
    turns, t = [], 0.5
    rare_at = sorted(rng.uniform(60.0, duration - 60.0, size=3))
    while t < duration - 2.0:
        if rare_at and t >= rare_at[0]:  # the rare speaker: three 3 s turns
            rare_at.pop(0)
            turns.append(RttmSegment("long", round(t, 3), 3.0, f"S{num_speakers - 1}"))
            t += 3.0 + float(rng.uniform(0.2, 1.0))
            continue
        speaker = int(rng.choice(num_speakers - 1, p=weights))
        length = float(rng.uniform(0.8, 8.0))
        length = min(length, duration - 1.0 - t)
        turns.append(RttmSegment("long", round(t, 3), round(length, 3), f"S{speaker}"))
        t += length - float(rng.uniform(0.2, 1.2)) if rng.uniform() < 0.3 else \
            length + float(rng.uniform(0.1, 1.5))
    return audio, turns


class NoisyOracleEmbedding:
    """The reference speaker a local speaker overlaps most, as a noisy 32-dim embedding."""

    def __init__(self, oracle, num_speakers: int, seed: int):
        import numpy as np

        self.oracle = oracle
        rng = np.random.default_rng(seed)
        self.centres = rng.normal(size=(num_speakers + 1, 32))
        self.centres /= np.linalg.norm(self.centres, axis=1, keepdims=True)

    def embed_masked(self, windows, rows, masks):
        import numpy as np

        out = []
        for row, mask in zip(rows, masks):
            start = self.oracle._locate(windows[row])
            offset = start // self.oracle.frame_shift
            local = self.oracle.reference[offset : offset + len(mask)]
            overlap = (local * mask[: len(local), None]).sum(0)
            who = int(np.argmax(overlap)) if overlap.size and overlap.max() > 0 else -1
            key = hashlib.sha1(f"{start}:{who}:{int(mask.sum())}".encode()).digest()
            rng = np.random.default_rng(int.from_bytes(key[:8], "little"))
            out.append(rng.uniform(0.5, 3.0) * (self.centres[who] + 0.08 * rng.normal(size=32)))
        return np.asarray(out)


def run_one(name: str, minutes: float, num_speakers: int, seed: int) -> dict:
    """One setting, in this process: DER, speakers found, peak RSS, time."""
    import numpy as np

    from espnet_prune.diar.powerset import Powerset
    from espnet_prune.eval.scoring import score
    from espnet_prune.infer.clustering import AgglomerativeClustering
    from espnet_prune.infer.oracle import OracleEmbedding, OracleSegmentation
    from espnet_prune.infer.pipeline import DiarizationPipeline, InferenceConfig

    audio, turns = meeting(minutes, num_speakers, seed)
    config = InferenceConfig(batch_size=32, max_speakers=20, **SETTINGS[name])
    powerset = Powerset(4, 2)
    probe = DiarizationPipeline(None, None, 320, 400, None, None, config)
    window, _, starts = probe.window_starts(len(audio))
    segmentation = OracleSegmentation(turns, len(audio), starts, powerset, 320, 400, window)
    locator = OracleEmbedding(audio, turns, starts, window, 320, 400)
    embedding = NoisyOracleEmbedding(locator, num_speakers, seed)
    counted = {}

    class Counting(DiarizationPipeline):
        def _reconstruct(self, *args):
            counted["embeddings"] = len(args[-2])  # owners: every (window, local speaker)
            counted["clean"] = int(np.sum(args[-1]))
            return super()._reconstruct(*args)

    pipeline = Counting(segmentation, segmentation.to_multilabel, 320, 400,
                        embedding, AgglomerativeClustering(0.7, 30), config)
    begin = time.perf_counter()
    hypothesis = pipeline(audio, "long")
    seconds = time.perf_counter() - begin
    result = score({"long": turns}, {"long": hypothesis}, collar=0.0)
    der = result["overall"]["der"]
    return {
        "setting": name, "minutes": minutes, "speakers": num_speakers,
        "windows": int(len(starts)), "embeddings": counted["embeddings"],
        "clean_embeddings": counted["clean"],
        "clustered": min(counted["clean"], SETTINGS[name]["max_cluster_embeddings"]
                         or counted["clean"]),
        "speakers_found": len({s.speaker for s in hypothesis}),
        "der_percent": round(100 * float(der), 3),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "seconds": round(seconds, 1), **SETTINGS[name],
        "numpy": np.__version__,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=50.0)
    parser.add_argument("--speakers", type=int, default=7)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one setting
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one, args.minutes, args.speakers, args.seed)))
        return 0
    rows = []
    for name in args.settings:
        proc = subprocess.run(
            [sys.executable, "-m", "espnet_prune.bin.long_recording_inference_options", "--one",
             name, "--minutes", str(args.minutes), "--speakers", str(args.speakers), "--seed",
             str(args.seed)],
            capture_output=True, text=True, check=True)
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    print(f"\n{args.minutes:g} min, {args.speakers} speakers, {rows[0]['windows']} windows, "
          f"{rows[0]['clean_embeddings']} clean embeddings of {rows[0]['embeddings']}\n")
    print(f"| setting | clustered | speakers found / {args.speakers} | DER % | peak RSS MiB | s |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['setting']} | {row['clustered']} | {row['speakers_found']} | "
              f"{row['der_percent']:.2f} | {row['peak_rss_mib']:.0f} | {row['seconds']:.0f} |")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
