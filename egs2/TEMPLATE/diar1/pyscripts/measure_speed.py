#!/usr/bin/env python3
"""Measure a WavLM checkpoint's forward time per second of audio on this machine's CPU.

The speed-up of pruning is the ratio of two such measurements (teacher / pruned), taken the
same way in the same stage: median over repeats after a warm-up, fixed number of threads.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("checkpoint")
    parser.add_argument("--seconds", type=float, default=8.0, help="audio length per forward")
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", required=True)
    args = parser.parse_args(argv)

    import torch

    from espnet_prune.wavlm import load_wavlm

    torch.set_num_threads(args.threads)
    model = load_wavlm(args.checkpoint).eval()
    audio = torch.randn(args.batch_size, int(args.seconds * 16000), generator=torch.Generator()
                        .manual_seed(0))
    times = []
    with torch.inference_mode():
        model.extract_features(audio)  # warm-up
        for _ in range(args.repeats):
            start = time.perf_counter()
            model.extract_features(audio)
            times.append(time.perf_counter() - start)
    audio_seconds = args.batch_size * args.seconds
    result = {
        "seconds_per_audio_second": statistics.median(times) / audio_seconds,
        "times": times,
        "audio_seconds": audio_seconds,
        "threads": args.threads,
        "device": "cpu",
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    print(f"{args.checkpoint}: {1000 * result['seconds_per_audio_second']:.2f} ms CPU per "
          f"second of audio ({args.threads} thread(s))")
    return 0


if __name__ == "__main__":
    from espnet_prune.utils.cli import run_main

    sys.exit(run_main(main))
