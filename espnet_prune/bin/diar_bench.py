"""Real-time factor and peak memory of the whole diarization pipeline on CPU.

Times the pipeline (sliding windows through an EEND model with a WavLM frontend, resemblyzer
embeddings, AHC) on a synthetic conversation (speaker activity for the embeddings taken from
its turns, since random weights give no realistic activity) with the unpruned and the 80 %-pruned
WavLM shape (random weights: the goals are about speed, not accuracy), then diarizes a long
recording in a child process and reads its peak RSS. RTF = wall time / audio duration;
CPU-RTF = CPU time of all threads / audio duration (on a shared machine the wall time depends
on the neighbours: on N idle cores the wall time is about CPU time / N at best).
Goals (issue 7): pruned Base+ RTF <= 0.1 on 2 cores; 2 h of audio in <= 2 GB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from espnet_prune.utils.cli import run_main


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="base_plus", choices=("base_plus", "tiny"),
                        help="model shapes; tiny is for tests")
    parser.add_argument("--duration", type=float, default=600.0, help="RTF recording (s)")
    parser.add_argument("--memory_duration", type=float, default=7200.0,
                        help="recording for the peak-RSS run (s); 0: skip it")
    parser.add_argument("--memory_model", default="pruned", choices=("pruned", "unpruned"))
    parser.add_argument("--models", default="unpruned,pruned",
                        help="which models to time (comma-separated)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--window", type=float, default=8.0, help="window (s)")
    parser.add_argument("--step", type=float, default=None,
                        help="window step (s); default 10 %% of the window (the paper)")
    parser.add_argument("--memory_step", type=float, default=None,
                        help="window step of the peak-RSS run (s); default: --step")
    parser.add_argument("--batch_size", type=int, default=8, help="windows per model call")
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--memory_child", action="store_true", help=argparse.SUPPRESS)
    return parser


def memory_child(args) -> int:
    """Runs in a fresh process so that ru_maxrss is this run's peak alone."""
    import tempfile

    import torch

    from espnet_prune.infer import bench
    from espnet_prune.infer.pipeline import WavFileAudio

    torch.set_num_threads(args.threads)
    (unpruned, pruned), encoder_conf = bench.PRESETS[args.preset]
    name = pruned if args.memory_model == "pruned" else unpruned
    model = bench.build_model(name, encoder_conf)
    with tempfile.TemporaryDirectory() as folder:
        # as diar_inference does: the recording is a file, read window by window
        path = f"{folder}/long.wav"
        turns = bench.write_synthetic_wav(path, args.memory_duration, seed=1)
        audio = WavFileAudio(path)
        result = bench.run_pipeline(model, audio, turns, args.window, args.step, args.batch_size)
    result.update(wavlm=name, peak_rss_mb=round(bench.peak_rss_mb(), 1))
    print("MEMORY_RESULT " + json.dumps(result))
    return 0


def measure_memory(args) -> dict:
    from espnet_prune.errors import EspnetPruneError

    command = [
        sys.executable, "-m", "espnet_prune.bin.diar_bench", "--memory_child",
        "--preset", args.preset, "--memory_duration", str(args.memory_duration),
        "--memory_model", args.memory_model, "--threads", str(args.threads),
        "--window", str(args.window), "--batch_size", str(args.batch_size),
    ]
    step = args.memory_step if args.memory_step is not None else args.step
    if step is not None:
        command += ["--step", str(step)]
    done = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("MEMORY_RESULT ")]
    if done.returncode != 0 or not lines:
        raise EspnetPruneError(f"peak-RSS run failed: {done.stderr[-2000:]}")
    result = json.loads(lines[-1].split(" ", 1)[1])
    result["step"] = step if step is not None else 0.1 * args.window
    return result


def print_table(results: dict) -> None:
    rows = [("model", "params", "GMACs/s", "RTF", "CPU-RTF", "seg s", "emb s", "other s",
             "windows")]
    for name, r in results["rtf"].items():
        rows.append((f"{name} ({r['wavlm']})", f"{r['params'] / 1e6:.1f}M",
                     f"{r['macs_per_second'] / 1e9:.2f}", f"{r['rtf']:.3f}",
                     f"{r['cpu_rtf']:.3f}",
                     f"{r['segmentation_seconds']:.1f}", f"{r['embedding_seconds']:.1f}",
                     f"{r['other_seconds']:.1f}", str(r["windows"])))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)))
    memory = results.get("memory")
    if memory:
        print(f"peak RSS {memory['peak_rss_mb']:.0f} MB for {memory['audio_seconds']:.0f} s "
              f"({memory['wavlm']}, step {memory['step']} s, RTF {memory['rtf']:.3f})")


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    if args.memory_child:
        return memory_child(args)
    import torch

    from espnet_prune.errors import ConfigError
    from espnet_prune.infer import bench

    torch.set_num_threads(args.threads)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if not set(models) <= {"unpruned", "pruned"}:
        raise ConfigError(f"--models takes unpruned and/or pruned, got {args.models!r}")
    (unpruned, pruned), encoder_conf = bench.PRESETS[args.preset]
    audio, turns = bench.synthetic_recording(args.duration)
    results = {
        "config": {"preset": args.preset, "duration": args.duration, "threads": args.threads,
                   "window": args.window,
                   "step": args.step if args.step is not None else 0.1 * args.window,
                   "batch_size": args.batch_size, "embedding": "resemblyzer",
                   "clustering": "ahc"},
        "rtf": {},
    }
    for name in models:
        wavlm_name = unpruned if name == "unpruned" else pruned
        model = bench.build_model(wavlm_name, encoder_conf)
        wavlm = model.frontend.wavlm
        result = {"wavlm": wavlm_name, "params": wavlm.num_params(),
                  "macs_per_second": wavlm.macs_per_second()}
        result.update(
            bench.run_pipeline(model, audio, turns, args.window, args.step, args.batch_size)
        )
        results["rtf"][name] = result
        print(f"{name}: {json.dumps(result)}", file=sys.stderr, flush=True)
        del model
    if args.memory_duration > 0:
        results["memory"] = measure_memory(args)
    print_table(results)
    text = json.dumps(results, indent=1)
    print(text)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            file.write(text + "\n")
    return 0


if __name__ == "__main__":
    run_main(main)
