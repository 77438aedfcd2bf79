"""Everything a lent GPU should show, in one run that prints one JSON (``gpu_check``).

Sections, in this order (each runs inside a guard: a failure becomes ``{"error": ...}`` in
its place and the next section still runs; once ``time_budget`` seconds are spent the
sections not yet started are ``{"skipped": ...}``):

* ``wavlm_speed``: unpruned vs pruned WavLM forward time (random weights,
  :func:`espnet_prune.measure.bench.compare_speed`): Base+ vs the released 80 %-sparse Base+
  structure and Large vs ``large_s80`` (:func:`espnet_prune.measure.cost.pruned_config`: a
  uniform structure of the paper's Large s80 size), in fp32 and under bfloat16 autocast, for
  batch 1 and 16 of 8 s (the paper's speed-up: 4.0x Base+, 2.6x Large on one GPU);
* ``teacher_train`` / ``teacher_train_amp``: a few steps of ESPnet's trainer on the recipe's
  teacher config (``conf/train_teacher_wavlm_base_plus.yaml``; ``--ngpu 1`` on cuda) without and
  with ``--use_amp``;
* ``prune_train`` / ``prune_train_amp``: the same for the pruning stage (``diar_prune`` with
  ``conf/prune_s80.yaml``, teacher: the teacher run's checkpoint);
* ``inference``: ``diar_inference`` with ``--ngpu 1`` on cuda (what ``diar.sh --gpu_inference
  true`` passes) of the teacher run's checkpoint; real-time factor.

The training data is synthetic conversations (:func:`bench.write_synthetic_wav`) written to a
temporary data dir. Seconds per training step are ESPnet's own ``train_time`` (one
log line per step): the first step (allocation, kernel selection) is reported apart, the median
of the others is ``seconds_per_step``. The trainers run in this process (one ESPnet import), as
``diar_train`` / ``diar_prune`` run them.

``size`` ``ci`` is the same run shrunk to seconds (tiny WavLM shapes, 1 s of audio, 2 steps, a
tiny Conformer, one bfloat16 forward row): the test of this module on a CPU. ``--use_amp`` on a
CPU is accepted by ESPnet but does nothing (its autocast and GradScaler are CUDA's), so there the
``_amp`` sections say ``amp_active: false``.
"""

from __future__ import annotations

import logging
import re
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

from espnet_prune.errors import ConfigError

CONF_DIR = Path(__file__).resolve().parents[2] / "egs2" / "TEMPLATE" / "diar1" / "conf"
SECTIONS = ("wavlm_speed", "teacher_train", "teacher_train_amp", "prune_train",
            "prune_train_amp", "inference")
# per size: WavLM pairs timed, (precision, batch) rows, audio seconds, timed/warm-up runs;
# training WavLM preset, steps, batch, chunk, extra options; data dirs (recordings x seconds)
SIZES = {
    "full": dict(
        pairs=(("base_plus", "base_plus_s80"), ("large", "large_s80")),
        speed_rows=(("fp32", 1), ("fp32", 16), ("bf16", 1), ("bf16", 16)),
        seconds=8.0, runs=5, warmup=2,
        wavlm="base_plus", steps=6, batch_size=16, chunk=8.0, num_workers=2,
        train_data=(8, 104.0), valid_data=(1, 16.0), test_data=(2, 60.0),
        teacher_options=(), prune_options=(),
        inference={"window": 8.0, "step_ratio": 0.1, "batch_size": 32},
    ),
    "ci": dict(
        pairs=(("tiny", "tiny_pruned"),),
        speed_rows=(("fp32", 1), ("fp32", 2), ("bf16", 1)),
        seconds=1.0, runs=2, warmup=1,
        wavlm="tiny", steps=2, batch_size=2, chunk=2.0, num_workers=0,
        train_data=(1, 8.0), valid_data=(1, 2.0), test_data=(1, 6.0),
        teacher_options=("--encoder_conf", "output_size=16", "--encoder_conf", "linear_units=32",
                         "--encoder_conf", "num_blocks=1", "--encoder_conf", "attention_heads=2",
                         "--encoder_conf", "cnn_module_kernel=3"),
        prune_options=("--model_conf", "distill_layers=[0,1,3]"),
        inference={"window": 2.0, "step_ratio": 0.5, "batch_size": 4},
    ),
}
DEFAULT_TIME_BUDGET = 420.0  # 7 min: the sections start within it; the full run stays <= 8 min
TRAIN_TIME = re.compile(r"\btrain_time=([-+0-9.eE]+)")


def wavlm_structure(name: str):
    """The WavLM config timed under ``name``: a preset of :func:`bench.wavlm_preset`, or
    ``large_s80`` (the Large student of :func:`cost.pruned_config`)."""
    from espnet_prune.measure.bench import wavlm_preset
    from espnet_prune.measure.cost import pruned_config

    return pruned_config("large") if name == "large_s80" else wavlm_preset(name)


def error_entry(exc: BaseException, log_tail: list[str] | None = None) -> dict:
    """What a failed section or row reports instead of its numbers."""
    entry = {"error": f"{type(exc).__name__}: {exc}".strip()[:2000],
             "where": "".join(traceback.format_tb(exc.__traceback__)[-2:])[-1000:]}
    if log_tail:
        entry["log_tail"] = log_tail[-5:]
    return entry


class Budget:
    """Seconds left of ``seconds`` from now (``0``: no limit)."""

    def __init__(self, seconds: float):
        self.seconds, self.start = seconds, time.perf_counter()

    def spent(self) -> float:
        return time.perf_counter() - self.start

    def exhausted(self) -> bool:
        return self.seconds > 0 and self.spent() >= self.seconds

    def skipped(self) -> dict:
        return {"skipped": f"time budget of {self.seconds:g} s spent ({self.spent():.0f} s)"}


def progress(message: str) -> None:
    print(f"gpu_check: {message}", file=sys.stderr, flush=True)


def synchronize(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def free_memory(device: str) -> None:
    import gc

    import torch

    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()


# ------------------------------------------------------------------------------ WavLM speed
def wavlm_speed(device: str, size: dict, budget: Budget) -> list[dict]:
    """One record per (pair, precision, batch): unpruned vs pruned forward time."""
    import torch

    from espnet_prune.measure.bench import compare_speed
    from espnet_prune.wavlm import WavLM

    rows = []
    for full_name, pruned_name in size["pairs"]:
        labels = {"full_structure": full_name, "pruned_structure": pruned_name}
        if budget.exhausted():
            rows.append({**labels, **budget.skipped()})
            continue
        try:
            torch.manual_seed(0)
            full = WavLM(wavlm_structure(full_name))
            pruned = WavLM(wavlm_structure(pruned_name))
        except Exception as exc:  # noqa: BLE001 - reported in the JSON, the run goes on
            rows.append({**labels, **error_entry(exc)})
            continue
        for precision, batch in size["speed_rows"]:
            row_labels = {**labels, "precision": precision, "batch": batch}
            if budget.exhausted():
                rows.append({**row_labels, **budget.skipped()})
                continue
            try:
                record = compare_speed(full, pruned, size["seconds"], batch, size["runs"],
                                       device, precision, warmup=size["warmup"], **labels)
                if device == "cuda":
                    record["peak_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
                    torch.cuda.reset_peak_memory_stats()
                rows.append(record)
                progress(f"{full_name} vs {pruned_name} {precision} batch {batch}: "
                         f"{record['time_full_s']:.4f} s / {record['time_pruned_s']:.4f} s "
                         f"= {record['speedup']:.2f}x")
            except Exception as exc:  # noqa: BLE001
                rows.append({**row_labels, **error_entry(exc)})
                free_memory(device)
        del full, pruned
        free_memory(device)
    return rows


# ------------------------------------------------------------------------------- data
def write_data_dir(root: Path, recordings: int, duration: float, seed: int) -> Path:
    """A data dir (wav.scp, rttm, uem) of ``recordings`` synthetic conversations of
    ``duration`` s, 4 speakers each (one speaker's overlapping turns merged)."""
    from espnet_prune.corpus.meeting_prep import write_data_dir as write_dir
    from espnet_prune.measure.bench import write_synthetic_wav
    from espnet_prune.utils.rttm import RttmSegment

    (root / "wav").mkdir(parents=True, exist_ok=True)
    wavs, segments, durations = {}, {}, {}
    for index in range(recordings):
        rec = f"synth{seed}_{index:02d}"
        wavs[rec] = (root / "wav" / f"{rec}.wav").resolve()
        turns = write_synthetic_wav(wavs[rec], duration, seed=seed + index)
        spans: dict[int, list[list[float]]] = {}
        for start, end, speaker in sorted(turns):
            merged = spans.setdefault(speaker, [])
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        segments[rec] = [RttmSegment(rec, start, end - start, f"spk{speaker}")
                         for speaker, pieces in spans.items() for start, end in pieces]
        durations[rec] = duration
    return write_dir(root, wavs, segments, durations)


# ------------------------------------------------------------------------------ training
class StepLog(logging.Handler):
    """Collects ESPnet's log lines while a trainer runs; ``step_times`` are the per-step
    ``train_time`` values (``--log_interval 1``: one line per step)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record):
        try:
            self.lines.append(record.getMessage())
        except Exception:  # noqa: BLE001 - a bad log record must not stop the trainer
            pass

    def step_times(self) -> list[float]:
        return [float(m.group(1)) for line in self.lines if ":train:" in line
                for m in [TRAIN_TIME.search(line)] if m]


def run_trainer(run, argv: list[str], device: str, steps: int, use_amp: bool) -> dict:
    """``run(argv)`` (a trainer entry point) with its log captured; the step times."""
    import torch

    handler, root = StepLog(), logging.getLogger()
    level = root.level
    # a handler on the root logger makes ESPnet's logging.basicConfig a no-op: the trainer's
    # log goes to ``handler`` only, not to the terminal
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    free_memory(device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    try:
        run(argv)
    except BaseException as exc:
        exc.log_tail = handler.lines  # for error_entry
        raise
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    wall = time.perf_counter() - start
    times = handler.step_times()
    if not times:
        raise RuntimeError("the trainer logged no training step (no 'train_time=' line)")
    result = {
        "ran": True, "steps": len(times), "steps_asked": steps,
        "seconds_per_step": statistics.median(times[1:] or times),
        "first_step_seconds": times[0], "step_seconds": times,
        "wall_seconds": round(wall, 2),
        "use_amp": use_amp, "amp_active": use_amp and device == "cuda",
        "amp_dtype": (("bfloat16" if torch.cuda.is_bf16_supported() else "float16")
                      if use_amp and device == "cuda" else None),
    }
    if device == "cuda":
        result["peak_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
    free_memory(device)
    return result


def trainer_options(device: str, size: dict, data: Path, output_dir: Path,
                    use_amp: bool) -> list[str]:
    """Options both trainers share: data, a few steps of one epoch, one log line per step."""
    chunk, batch = str(size["chunk"]), str(size["batch_size"])
    return [
        "--train_data_path_and_name_and_type", f"{data}/train/wav.scp,speech,sound",
        "--valid_data_path_and_name_and_type", f"{data}/valid/wav.scp,speech,sound",
        "--output_dir", str(output_dir), "--ngpu", "1" if device == "cuda" else "0",
        "--use_amp", str(use_amp).lower(),
        "--chunk_size", chunk, "--chunk_shift", chunk, "--valid_chunk_shift", chunk,
        "--batch_size", batch, "--valid_batch_size", batch,
        "--num_iters_per_epoch", str(size["steps"]), "--max_epoch", "1", "--log_interval", "1",
        "--num_workers", str(size["num_workers"]), "--seed", "0", "--resume", "false",
        "--use_tensorboard", "false", "--keep_nbest_models", "1", "--progress_bar", "false",
    ]  # fmt: skip


def train_teacher(argv: list[str]) -> None:
    """What ``diar_train`` runs: checks, then ESPnet's trainer (the plugin's registration
    hook is installed: this module is inside ``espnet_prune``)."""
    from espnet_prune.diar.model_file import parse_task_args
    from espnet_prune.tasks.diar import PowersetDiarizationTask

    args = parse_task_args(PowersetDiarizationTask.get_parser(), argv)
    PowersetDiarizationTask.check_required_command_args(args)
    PowersetDiarizationTask.validate_data(args)
    PowersetDiarizationTask.main(args=args)


def train_prune(argv: list[str]) -> None:
    """What ``diar_prune`` runs."""
    from espnet_prune.diar.model_file import parse_task_args
    from espnet_prune.tasks.prune_stages import prune, stage_parser

    prune(parse_task_args(stage_parser("diar_prune"), argv))


def teacher_argv(device, size, work: Path, conf_dir: Path, use_amp: bool) -> list[str]:
    return ["--config", str(conf_dir / "train_teacher_wavlm_base_plus.yaml"),
            "--frontend_conf", f"path={work / 'wavlm.pt'}",
            *trainer_options(device, size, work / "data", work / teacher_dir(use_amp), use_amp),
            *size["teacher_options"]]


def prune_argv(device, size, work: Path, conf_dir: Path, teacher: Path,
               use_amp: bool) -> list[str]:
    return ["--config", str(conf_dir / "prune_s80.yaml"), "--teacher", str(teacher / "1epoch.pth"),
            "--teacher_config", str(teacher / "config.yaml"),
            *trainer_options(device, size, work / "data", work / f"prune_{amp_tag(use_amp)}",
                             use_amp),
            *size["prune_options"]]


def amp_tag(use_amp: bool) -> str:
    return "amp" if use_amp else "fp32"


def teacher_dir(use_amp: bool) -> str:
    return f"teacher_{amp_tag(use_amp)}"


# ----------------------------------------------------------------------------- inference
def inference(device: str, size: dict, work: Path, teacher: Path) -> dict:
    """``diar_inference`` (``--ngpu 1`` on cuda) of the teacher run's checkpoint on the test
    data dir; the wall time includes loading the model."""
    import soundfile as sf
    import yaml

    from espnet_prune.infer.run import diarize
    from espnet_prune.utils.datadir import read_scp

    config = work / "inference.yaml"
    config.write_text(yaml.safe_dump({**size["inference"], "embedding": {"name": "resemblyzer"},
                                      "clustering": {"name": "ahc"}}))
    wav_scp = work / "data" / "test" / "wav.scp"
    audio_seconds = sum(sf.info(path).duration for path in read_scp(wav_scp).values())
    free_memory(device)
    synchronize(device)
    start = time.perf_counter()
    segments = diarize(str(teacher / "1epoch.pth"), str(work / "inference"),
                       wav_scp=str(wav_scp), train_config=str(teacher / "config.yaml"),
                       config=str(config),
                       ngpu=1 if device == "cuda" else 0, no_progress=True)
    synchronize(device)
    wall = time.perf_counter() - start
    return {"ran": True, "ngpu": 1 if device == "cuda" else 0,
            "audio_seconds": audio_seconds, "wall_seconds": wall,
            "rtf": wall / audio_seconds, "recordings": len(segments),
            "segments": sum(len(s) for s in segments.values()),
            "settings": dict(size["inference"], embedding="resemblyzer", clustering="ahc")}


# ---------------------------------------------------------------------------------- run
def environment(device: str) -> dict:
    import platform

    import torch

    env = {"torch": torch.__version__, "python": platform.python_version(),
           "cpu_threads": torch.get_num_threads()}
    if device == "cuda":
        # fp32 speed depends on whether matmuls / convolutions may use TF32 tensor cores
        env.update(gpu=torch.cuda.get_device_name(0), cuda=torch.version.cuda,
                   bf16_supported=torch.cuda.is_bf16_supported(),
                   gpu_memory_gb=round(torch.cuda.get_device_properties(0).total_memory / 1e9, 1),
                   matmul_allow_tf32=torch.backends.cuda.matmul.allow_tf32,
                   cudnn_allow_tf32=torch.backends.cudnn.allow_tf32)
    return env


def guarded(results: dict, name: str, budget: Budget, function, *needs: str) -> None:
    """``results[name] = function()``, or its error entry; skipped once the budget is spent or
    when a section it needs (``needs``) did not run."""
    if budget.exhausted():
        results[name] = budget.skipped()
        progress(f"{name}: skipped (time budget)")
        return
    missing = [need for need in needs if not results.get(need, {}).get("ran")]
    if missing:
        results[name] = {"error": f"needs {' or '.join(missing)}, which did not run"}
        progress(f"{name}: not run ({results[name]['error']})")
        return
    progress(f"{name} ...")
    start = time.perf_counter()
    try:
        results[name] = function()
    # reported in the JSON, the run goes on; SystemExit: ESPnet's parser on a bad option
    except (Exception, SystemExit) as exc:  # noqa: BLE001
        results[name] = error_entry(exc, getattr(exc, "log_tail", None))
        progress(f"{name}: error {results[name]['error']}")
    results[name]["section_seconds"] = round(time.perf_counter() - start, 1)


def run_sections(device: str, size_name: str, work: Path, conf_dir: Path,
                 budget: Budget) -> dict:
    import torch

    from espnet_prune.wavlm import WavLM, save_wavlm

    size = SIZES[size_name]
    results: dict = {}
    guarded(results, "wavlm_speed", budget, lambda: {
        "ran": True, "rows": wavlm_speed(device, size, budget)})
    for split, seed in (("train", 0), ("valid", 100), ("test", 200)):
        write_data_dir(work / "data" / split, *size[f"{split}_data"], seed=seed)
    torch.manual_seed(0)
    save_wavlm(WavLM(wavlm_structure(size["wavlm"])), work / "wavlm.pt")
    for use_amp in (False, True):
        name = "teacher_train" + ("_amp" if use_amp else "")
        guarded(results, name, budget, lambda use_amp=use_amp: run_trainer(
            train_teacher, teacher_argv(device, size, work, conf_dir, use_amp), device,
            size["steps"], use_amp))
    # the pruning stage and inference start from the fp32 teacher (else the amp one)
    teacher_section = next((n for n in ("teacher_train", "teacher_train_amp")
                            if results.get(n, {}).get("ran")), "teacher_train")
    teacher = work / teacher_dir(teacher_section.endswith("_amp"))
    for use_amp in (False, True):
        name = "prune_train" + ("_amp" if use_amp else "")
        guarded(results, name, budget, lambda use_amp=use_amp: run_trainer(
            train_prune, prune_argv(device, size, work, conf_dir, teacher, use_amp), device,
            size["steps"], use_amp), teacher_section)
    guarded(results, "inference", budget,
            lambda: inference(device, size, work, teacher), teacher_section)
    return results


def speed_table(rows: list[dict]) -> list[str]:
    lines = ["unpruned -> pruned        precision batch  unpruned s  pruned s  speed-up  "
             "MACs ratio"]
    for row in rows:
        what = f"{row.get('full_structure')} -> {row.get('pruned_structure')}"
        if "speedup" in row:
            lines.append(f"{what:<25} {row['precision']:<9} {row['batch']:>5}  "
                         f"{row['time_full_s']:>10.4f}  {row['time_pruned_s']:>8.4f}  "
                         f"{row['speedup']:>7.2f}x  {row['macs_ratio']:>9.2f}x")
        else:
            status = row.get("error") or row.get("skipped")
            lines.append(f"{what:<25} {row.get('precision', ''):<9} {row.get('batch', ''):>5}"
                         f"  {status}")
    return lines


def summary_table(results: dict) -> str:
    """The short table printed before the JSON."""
    lines = []
    speed = results["sections"].get("wavlm_speed", {})
    if "rows" in speed:
        lines += speed_table(speed["rows"])
    else:
        lines.append(f"wavlm_speed: {speed.get('error') or speed.get('skipped')}")
    for name in SECTIONS[1:]:
        entry = results["sections"].get(name, {})
        if "seconds_per_step" in entry:
            memory = (f", peak {entry['peak_memory_mb']:.0f} MB"
                      if "peak_memory_mb" in entry else "")
            lines.append(f"{name}: {entry['seconds_per_step']:.3f} s/step over "
                         f"{entry['steps']} steps (first {entry['first_step_seconds']:.3f} s"
                         f"{memory}; amp active: {entry['amp_active']})")
        elif "rtf" in entry:
            lines.append(f"{name}: RTF {entry['rtf']:.4f} ({entry['audio_seconds']:.0f} s of "
                         f"audio in {entry['wall_seconds']:.1f} s, model loading included)")
        else:
            lines.append(f"{name}: {entry.get('error') or entry.get('skipped')}")
    lines.append(f"total {results['wall_seconds']:.0f} s")
    return "\n".join(lines)


def gpu_check(device: str = "cuda", size: str = "full", json: str | None = None,
              time_budget: float = DEFAULT_TIME_BUDGET, conf_dir: str | None = None,
              work_dir: str | None = None) -> dict:
    """The ``gpu_check`` command: run every section (see the module docstring), print the
    table and the JSON, write the JSON to ``json``; returns it. Only bad options raise."""
    import json as json_module

    import torch

    from espnet_prune.utils.datadir import write_text

    if device not in ("cuda", "cpu"):
        raise ConfigError(f"--device takes cuda or cpu, got {device!r}")
    if size not in SIZES:
        raise ConfigError(f"--size takes {' or '.join(SIZES)}, got {size!r}")
    if not time_budget >= 0:  # also rejects nan
        raise ConfigError(f"--time_budget must be >= 0 seconds (0: no limit), got {time_budget}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: PyTorch sees no CUDA device (use --device cpu)")
    conf = Path(conf_dir) if conf_dir else CONF_DIR
    if not conf.is_dir():
        raise ConfigError(f"--conf_dir {conf}: no such directory (the recipe's conf/ with "
                          "train_teacher_wavlm_base_plus.yaml and prune_s80.yaml)")
    budget = Budget(time_budget)
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    with tempfile.TemporaryDirectory(dir=work_dir, prefix="gpu_check_") as folder:
        sections = run_sections(device, size, Path(folder), conf, budget)
    results = {
        "config": {"device": device, "size": size, "time_budget": time_budget,
                   "conf_dir": str(conf), "started": started},
        "environment": environment(device),
        "sections": sections,
        "wall_seconds": round(budget.spent(), 1),
    }
    print(summary_table(results))
    text = json_module.dumps(results, indent=1)
    print(text)
    if json:
        write_text(json, text + "\n", make_parents=True)
    return results
