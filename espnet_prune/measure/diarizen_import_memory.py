"""Peak memory of diarizing a long recording with an imported DiariZen model.

Builds a DiariZen model directory with the released ``diarizen-wavlm-base-s80-md`` structure
(random weights from the test suite's fixture generator: the key names and shapes of the
release, the released inference and VBx settings in ``config.toml``, random PLDA files), a
random-weight WeSpeaker ResNet34 in pyannote's layout, and a synthetic conversation of
``--duration`` seconds written to a 16-bit WAV. Then it runs exactly what a user runs:
``diarizen_import`` followed by ``diar_inference --config EXP/inference.yaml`` in a child
process, whose peak RSS (``ru_maxrss`` of that child alone, from ``os.wait4``) and wall/CPU
times are reported as JSON and a table.

    python -m espnet_prune.bin.diarizen_import_memory --duration 7200 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "test"))  # the DiariZen-layout fixture generator

# released settings of diarizen-wavlm-base-s80-md (config.toml [inference] / [clustering])
RELEASED_INFERENCE = {"seg_duration": 8, "segmentation_step": 0.1, "batch_size": 32,
                      "apply_median_filtering": True}
RELEASED_CLUSTERING = {"method": "VBxClustering", "min_speakers": 1, "max_speakers": 20,
                       "ahc_criterion": "distance", "ahc_threshold": 0.6, "Fa": 0.07,
                       "Fb": 0.8, "lda_dim": 128, "max_iters": 20}


def prepare(folder: Path, duration: float) -> dict:
    import torch
    from diarizen_fixtures import (
        diarizen_shapes,
        distinct_state,
        released_base_s80,
        write_config_toml,
        write_vbx_files,
    )

    from espnet_prune.infer.wespeaker import WeSpeakerResNet34
    from espnet_prune.measure.bench import write_synthetic_wav

    wavlm, args = released_base_s80()
    source = folder / "diarizen-wavlm-base-s80-md"
    source.mkdir(parents=True, exist_ok=True)
    torch.save(distinct_state(diarizen_shapes(wavlm, args)), source / "pytorch_model.bin")
    write_config_toml(source / "config.toml", args, RELEASED_INFERENCE, RELEASED_CLUSTERING)
    write_vbx_files(source)
    torch.manual_seed(0)
    (folder / "wespeaker").mkdir(exist_ok=True)
    torch.save({"state_dict": WeSpeakerResNet34().state_dict()},
               folder / "wespeaker" / "pytorch_model.bin")
    wav = folder / "long.wav"
    turns = write_synthetic_wav(wav, duration, seed=1)
    (folder / "wav.scp").write_text(f"long {wav}\n")
    return {"source": source, "wespeaker": folder / "wespeaker", "turns": len(turns)}


def run_child(args: list[str], threads: int) -> dict:
    """Run ``python -m ARGS`` and return its wall time, CPU time and peak RSS (its own)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", *args], env=env)
    samples: list[tuple[float, float]] = []  # (seconds, RSS MB): where in the run the peak is
    done = threading.Event()
    sampler = threading.Thread(target=sample_rss, args=(child.pid, start, samples, done))
    sampler.start()
    _, status, usage = os.wait4(child.pid, 0)
    done.set()
    sampler.join()
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{args[0]} failed (exit {os.waitstatus_to_exitcode(status)})")
    cpu = usage.ru_utime + usage.ru_stime
    return {"wall_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1),
            "peak_rss_mb": round(usage.ru_maxrss / 1024.0, 1),
            "rss_samples": thin(samples, 40)}


def sample_rss(pid: int, start: float, samples: list, done: threading.Event,
               every: float = 2.0) -> None:
    """Append (seconds since start, RSS MB) of ``pid`` every ``every`` s until ``done``."""
    status = Path(f"/proc/{pid}/status")
    while not done.wait(every):
        try:
            line = next(x for x in status.read_text().splitlines() if x.startswith("VmRSS:"))
        except (OSError, StopIteration):
            continue
        rss = int(line.split()[1]) / 1024.0
        samples.append((round(time.perf_counter() - start, 1), round(rss)))


def thin(samples: list, count: int) -> list:
    """At most ``count`` evenly spaced samples, always with the largest one."""
    if len(samples) <= count:
        return samples
    picks = {round(i * (len(samples) - 1) / (count - 1)) for i in range(count)}
    picks.add(max(range(len(samples)), key=lambda i: samples[i][1]))
    return [samples[i] for i in sorted(picks)]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=7200.0, help="recording (s)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", default=None, help="keep the files here (default: temp)")
    parser.add_argument("--json", dest="json_path", default=None)
    parser.add_argument("--forward_batch_size", type=int, default=None,
                        help="override the imported inference.yaml's (to compare)")
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(options.workdir or temp)
        folder.mkdir(parents=True, exist_ok=True)
        made = prepare(folder, options.duration)
        exp = folder / "exp"
        imported = run_child(["espnet_prune.bin.diarizen_import", "--model_dir",
                              str(made["source"]), "--output_dir", str(exp),
                              "--embedding_model", str(made["wespeaker"])], options.threads)
        if options.forward_batch_size is not None:
            import yaml

            conf = yaml.safe_load((exp / "inference.yaml").read_text())
            conf["forward_batch_size"] = options.forward_batch_size
            (exp / "inference.yaml").write_text(yaml.safe_dump(conf, sort_keys=False))
        inference = run_child(["espnet_prune.bin.diar_inference", "--model_file",
                               str(exp / "model.pth"), "--train_config", str(exp / "config.yaml"),
                               "--config", str(exp / "inference.yaml"), "--wav_scp",
                               str(folder / "wav.scp"), "--output_dir", str(folder / "out"),
                               "--no_progress"], options.threads)
        rttm = (folder / "out" / "rttm").read_text().splitlines()
        import yaml

        result = {
            "audio_seconds": options.duration, "threads": options.threads,
            "inference_config": yaml.safe_load((exp / "inference.yaml").read_text()),
            "synthetic_turns": made["turns"], "rttm_segments": len(rttm),
            "speakers_found": len({line.split()[7] for line in rttm}),
            "import": imported, "diar_inference": {
                **inference, "rtf": round(inference["wall_seconds"] / options.duration, 4),
                "cpu_rtf": round(inference["cpu_seconds"] / options.duration, 4)},
        }
    d = result["diar_inference"]
    print(f"{'audio':>8} {'peak RSS':>10} {'wall':>8} {'RTF':>7} {'CPU-RTF':>8} {'segments':>9}")
    print(f"{options.duration:>7.0f}s {d['peak_rss_mb']:>8.0f}MB {d['wall_seconds']:>7.0f}s "
          f"{d['rtf']:>7.3f} {d['cpu_rtf']:>8.3f} {len(rttm):>9}")
    text = json.dumps(result, indent=1, default=str)
    print(text)
    if options.json_path:
        from espnet_prune.utils.datadir import write_text

        write_text(options.json_path, text + "\n", make_parents=True)


if __name__ == "__main__":
    main()
