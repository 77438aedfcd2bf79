"""Speed and memory of the whole diarization pipeline on CPU (random weights: timing only),
and the WavLM forward speed that ``wavlm_bench`` measures and recipe stage 8 reports.

The model is the paper's EEND model around a WavLM of a given shape (``base_plus`` unpruned,
``base_plus_s80``: the released 80 %-sparse Base+ structure), fed through the same
:class:`~espnet_prune.infer.pipeline.DiarizationPipeline` as real inference, with resemblyzer
or WeSpeaker ResNet34 (random weights) embeddings and AHC. The recording is synthetic
speech-like audio (harmonic "voices" taking turns, with overlaps and pauses).

A WavLM *speed record* (:func:`forward_speed`, one per model) is the one JSON schema of a
forward-time measurement: ``seconds_per_audio_second`` (median forward time / seconds of
audio in the batch), ``times`` (every timed forward, s), ``audio_seconds``, ``threads``,
``device``. ``make_results`` reads :data:`SPEED_KEY` from it.
"""

from __future__ import annotations

import copy
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from espnet_prune.eval.results import SPEED_KEY

RATE = 16000
PRECISIONS = ("fp32", "bf16")  # forward_speed: plain fp32, or bfloat16 autocast
# (unpruned, pruned) WavLM presets and Conformer settings per benchmark preset
PRESETS = {
    "base_plus": (("base_plus", "base_plus_s80"), {}),
    "tiny": (
        ("tiny", "tiny_pruned"),
        dict(output_size=32, attention_heads=2, linear_units=64, num_blocks=1,
             cnn_module_kernel=7),
    ),
}


def wavlm_preset(name: str):
    from espnet_prune.wavlm import WavLMConfig, wavlm_config

    if name == "tiny_pruned":  # a tiny model with pruned-looking per-layer structure
        conf = wavlm_config("tiny").to_dict()
        conf.update(conv_channels=[16, 24, 16, 16, 24, 16, 16], kept_heads=[[0, 2], [1], []],
                    ffn_dims=[24, 8, 16], use_attention=[True, True, False])
        return WavLMConfig.from_dict(conf)
    return wavlm_config(name)


def uniform_structure(config, sparsity: float):
    """Shrink all prunable units by one fraction so params ~= (1 - sparsity) * full."""
    from espnet_prune.wavlm.counting import count_params, structure_of_config

    target = (1.0 - sparsity) * count_params(config, structure_of_config(config))

    def shrunk(q):
        cfg = copy.deepcopy(config)
        cfg.conv_channels = [max(1, round(c * q)) for c in cfg.conv_channels]
        cfg.kept_heads = [h[:max(1, round(len(h) * q))] for h in cfg.kept_heads]
        cfg.ffn_dims = [max(1, round(f * q)) for f in cfg.ffn_dims]
        return cfg

    lo, hi = 0.0, 1.0
    for _ in range(40):
        mid = (lo + hi) / 2
        if count_params(shrunk(mid), structure_of_config(shrunk(mid))) > target:
            hi = mid
        else:
            lo = mid
    return shrunk(lo)


def forward_speed(models: dict, seconds: float, batch_size: int = 1, runs: int = 5,
                  warmup: int = 2, device: str = "cpu",
                  precision: str = "fp32") -> dict[str, dict]:
    """A speed record per WavLM of ``{name: model}``: the models take turns (warm-up rounds,
    then ``runs`` timed rounds) so that a change in the machine's load hits all of them alike;
    the input is fixed random audio (speed does not depend on the values). ``precision``
    ``bf16`` runs the forwards under ``torch.autocast`` with bfloat16 (weights stay fp32)."""
    import contextlib

    import torch

    from espnet_prune.errors import ConfigError

    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    device = torch.device(device)
    wav = torch.randn(batch_size, int(seconds * RATE), generator=torch.Generator().manual_seed(0))
    wav = wav.to(device)
    models = {name: model.eval().to(device) for name, model in models.items()}

    def autocast():
        if precision == "bf16":
            return torch.autocast(device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def run(model):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.inference_mode(), autocast():
            model.extract_features(wav)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    for _ in range(warmup):
        for model in models.values():
            run(model)
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(runs):
        for name, model in models.items():
            times[name].append(run(model))
    audio_seconds = batch_size * seconds
    return {
        name: {SPEED_KEY: statistics.median(t) / audio_seconds, "times": t,
               "audio_seconds": audio_seconds, "threads": torch.get_num_threads(),
               "device": str(device), "precision": precision}
        for name, t in times.items()
    }


def checkpoint_speed(checkpoint: str, seconds: float, batch_size: int, runs: int,
                     device: str = "cpu") -> dict:
    """The speed record of one WavLM checkpoint as saved (recipe stage 8: teacher, pruned)."""
    from espnet_prune.wavlm import load_wavlm

    record = forward_speed({"model": load_wavlm(checkpoint)}, seconds, batch_size, runs,
                           device=device)["model"]
    return {"checkpoint": str(checkpoint), **record}


def pruning_speedup(preset: str, sparsity: float, pruned: str | None, seconds: float,
                    batch_size: int, runs: int, device: str = "cpu") -> dict:
    """Unpruned WavLM of ``preset`` vs a pruned one (random weights): the checkpoint
    ``pruned`` (its gates applied) or else the structure for ``sparsity`` (Base+ at 0.8: the
    released 80 %-sparse Base+; otherwise :func:`uniform_structure`)."""
    from espnet_prune.wavlm import WavLM, load_wavlm, wavlm_config

    full = WavLM(wavlm_config(preset))
    if pruned:
        model, structure = load_wavlm(pruned), f"checkpoint {pruned}"
        if model.config.pruning_units:
            model.prune()
            structure += " (gates applied with prune())"
    elif preset == "base_plus" and abs(sparsity - 0.8) < 1e-9:
        model, structure = WavLM(wavlm_config("base_plus_s80")), "base_plus_s80"
    else:
        model = WavLM(uniform_structure(wavlm_config(preset), sparsity))
        structure = f"uniform shrink to sparsity {sparsity}"
    return compare_speed(full, model, seconds, batch_size, runs, device,
                         preset=preset, pruned_structure=structure)


def compare_speed(full, pruned, seconds: float, batch_size: int, runs: int,
                  device: str = "cpu", precision: str = "fp32", warmup: int = 2,
                  **labels) -> dict:
    """The record of one unpruned vs pruned comparison (``labels`` first, then sizes, MACs,
    the median forward times and their ratio ``speedup``, and both speed records)."""
    speed = forward_speed({"full": full, "pruned": pruned}, seconds, batch_size, runs,
                          warmup=warmup, device=device, precision=precision)
    t_full = statistics.median(speed["full"]["times"])
    t_pruned = statistics.median(speed["pruned"]["times"])
    return {
        **labels, "device": speed["full"]["device"], "precision": precision,
        "threads": speed["full"]["threads"], "seconds_of_audio": seconds, "batch": batch_size,
        "params_full": full.num_params(), "params_pruned": pruned.num_params(),
        "macs_per_second_full": full.macs_per_second(),
        "macs_per_second_pruned": pruned.macs_per_second(),
        "macs_ratio": full.macs_per_second() / pruned.macs_per_second(),
        "sparsity_params": 1.0 - pruned.num_params() / full.num_params(),
        "time_full_s": t_full, "time_pruned_s": t_pruned, "speedup": t_full / t_pruned,
        "runs": runs, "full": speed["full"], "pruned": speed["pruned"],
    }


def benchmark_wavlm(preset: str, sparsity: float, pruned: str | None, checkpoint: str | None,
                    seconds: float, batch_size: int, runs: int, device: str, threads: int,
                    json: str | None) -> dict:
    """``wavlm_bench``: the speed record of one checkpoint, or unpruned vs pruned; printed as
    one JSON line and written to ``json`` when given."""
    import json as json_module

    import torch

    from espnet_prune.errors import ConfigError
    from espnet_prune.utils.datadir import write_text

    if not 0.0 <= sparsity < 1.0:
        raise ConfigError(f"--sparsity must be in [0, 1), got {sparsity}")
    if not 0.025 <= seconds <= 3600:  # also rejects nan; 0.025 s: one 25 ms frame
        raise ConfigError(f"--seconds must be in [0.025, 3600], got {seconds}")
    if runs < 1:
        raise ConfigError(f"--runs must be at least 1, got {runs}")
    if batch_size < 1:
        raise ConfigError(f"--batch_size must be at least 1, got {batch_size}")
    if threads < 0:
        raise ConfigError(f"--threads must be 0 (default) or positive, got {threads}")
    if threads:
        torch.set_num_threads(threads)
    if checkpoint:
        result = checkpoint_speed(checkpoint, seconds, batch_size, runs, device)
    else:
        result = pruning_speedup(preset, sparsity, pruned, seconds, batch_size, runs, device)
    print(json_module.dumps(result))
    if json:
        write_text(json, json_module.dumps(result, indent=1) + "\n", make_parents=True)
    return result


def build_model(wavlm_name: str, encoder_conf: dict, seed: int = 0):
    """EEND model (WavLM frontend + Conformer + powerset head) with random weights, eval."""
    import torch

    from espnet_prune.diar.encoder import PowersetConformerEncoder
    from espnet_prune.diar.frontends import WavLMPrunableFrontend
    from espnet_prune.diar.model import PowersetDiarizationModel
    from espnet_prune.wavlm import WavLM, save_wavlm

    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "wavlm.pt"
        save_wavlm(WavLM(wavlm_preset(wavlm_name)), path)
        frontend = WavLMPrunableFrontend(str(path))
    width = encoder_conf.get("output_size", 256)
    encoder = PowersetConformerEncoder(input_size=width, **encoder_conf)
    return PowersetDiarizationModel(frontend=frontend, encoder=encoder).eval()


def synthetic_turns(duration: float, num_speakers: int = 4, seed: int = 0):
    """Turns ``(start, end, speaker)``: 0.5-6 s long, 20 % overlapping the previous one."""
    rng = np.random.default_rng(seed)
    turns, t = [], 0.0
    while t < duration:
        speaker = int(rng.integers(num_speakers))
        length = float(rng.uniform(0.5, 6.0))
        turns.append((t, min(t + length, duration), speaker))
        t += length + (float(rng.uniform(-0.5, 0.0)) if rng.uniform() < 0.2
                       else float(rng.uniform(0.1, 1.5)))
    return turns


def render(turns, first: int, last: int, seed: int = 0) -> np.ndarray:
    """Samples ``[first, last)`` of the recording: a faint noise floor plus, per turn, a
    harmonic voice whose pitch (100 + 40·speaker Hz, ±10 Hz vibrato) marks the speaker."""
    rng = np.random.default_rng([seed, first])
    audio = rng.standard_normal(last - first, dtype=np.float32)
    audio *= 0.003
    for start, end, speaker in turns:
        lo, hi = max(int(start * RATE), first), min(int(end * RATE), last)
        if lo >= hi:
            continue
        t = (np.arange(lo, hi) - int(start * RATE)) / RATE
        base = 100.0 + 40.0 * speaker
        phase = 2 * np.pi * (base * t - 10.0 / (2 * np.pi * 3.0) * np.cos(2 * np.pi * 3.0 * t))
        voice = sum(np.sin(k * phase) / k for k in range(1, 5))
        audio[lo - first : hi - first] += (0.1 * voice).astype(np.float32)
    return audio


def synthetic_recording(duration: float, num_speakers: int = 4, seed: int = 0):
    """(float32 audio, turns) of a synthetic conversation of ``duration`` s."""
    turns = synthetic_turns(duration, num_speakers, seed)
    return render(turns, 0, int(duration * RATE), seed), turns


def write_synthetic_wav(path, duration: float, num_speakers: int = 4, seed: int = 0,
                        block: float = 60.0):
    """The same conversation written to a 16-bit WAV block by block (bounded memory)."""
    import soundfile as sf

    turns = synthetic_turns(duration, num_speakers, seed)
    total, step = int(duration * RATE), int(block * RATE)
    with sf.SoundFile(str(path), "w", samplerate=RATE, channels=1, subtype="PCM_16") as out:
        for first in range(0, total, step):
            out.write(render(turns, first, min(first + step, total), seed))
    return turns


class ReferenceActivity:
    """Segmentation for timing: runs the model on every batch (that is what is timed) but
    returns hard powerset decisions made from the synthetic turns, so that the embedding and
    clustering load is that of a real conversation rather than of a random network's output."""

    def __init__(self, model_segmentation, turns, num_samples, starts, frame_shift,
                 frame_length, powerset):
        import torch

        self.model_segmentation = model_segmentation
        self.powerset = powerset
        num_frames = int(np.ceil(num_samples / frame_shift))
        centre = (frame_length - frame_shift) / 2 / RATE
        middle = centre + (np.arange(num_frames) + 0.5) * frame_shift / RATE
        speakers = max((s for _, _, s in turns), default=0) + 1
        self.reference = np.zeros((num_frames, speakers), dtype=np.float32)
        for start, end, speaker in turns:
            lo, hi = np.searchsorted(middle, [start, end])
            self.reference[lo:hi, speaker] = 1
        self.offsets = list(np.asarray(starts) // frame_shift)
        self.calls = 0
        self.torch = torch

    def __call__(self, batch, lengths):
        torch = self.torch
        log_probs = self.model_segmentation(batch, lengths)  # timed, then replaced
        frames, classes = log_probs.shape[1], log_probs.shape[2]
        k = self.powerset.max_speakers_per_chunk
        out = np.full((len(batch), frames, classes), -1e4, dtype=np.float32)
        for row in range(len(batch)):
            offset = self.offsets[self.calls]
            self.calls += 1
            chunk = self.reference[offset : offset + frames]
            top = np.argsort(-chunk.sum(0))[:k]
            local = np.zeros((frames, k), dtype=np.float32)
            local[: len(chunk), : len(top)] = chunk[:, top]
            # more than max_speakers_per_frame active: keep the first ones
            index = self.powerset.to_powerset(torch.from_numpy(local)).numpy()
            out[row, np.arange(frames), index] = 0.0
        return out


class Timed:
    """Wraps a callable and adds its wall time to ``seconds``."""

    def __init__(self, function):
        self.function, self.seconds = function, 0.0

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self.function(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start


class TimedMethods:
    """A stand-in for ``target`` (called like it) whose listed methods add their wall time to
    :meth:`total`; every other attribute is the target's, so the pipeline sees the same
    extractor or clustering."""

    def __init__(self, target, methods: tuple[str, ...]):
        self.target = target
        self.timers = {name: Timed(getattr(target, name)) for name in methods
                       if hasattr(target, name)}

    def __getattr__(self, name):
        timers = self.__dict__.get("timers", {})
        return timers[name] if name in timers else getattr(self.target, name)

    def __call__(self, *args, **kwargs):
        return self.timers["__call__"](*args, **kwargs)

    def total(self) -> float:
        return sum(timer.seconds for timer in self.timers.values())


EMBEDDING_NAMES = ("resemblyzer", "wespeaker_resnet34")


def build_bench_embedding(name: str, folder: str, **conf):
    """The embedding extractor ``name``; the ResNet34 with random weights (timing only),
    written to a checkpoint in ``folder``."""
    import torch

    from espnet_prune.errors import ConfigError
    from espnet_prune.infer.embeddings import build_embedding

    if name not in EMBEDDING_NAMES:
        raise ConfigError(f"--embedding takes one of {EMBEDDING_NAMES}, got {name!r}")
    if name == "wespeaker_resnet34":
        from espnet_prune.infer.wespeaker import WeSpeakerResNet34

        torch.manual_seed(0)
        path = Path(folder) / "wespeaker_random.pt"
        torch.save({"state_dict": WeSpeakerResNet34().state_dict()}, path)
        conf = dict(conf, checkpoint=str(path))
    return build_embedding(name, **conf)


def run_pipeline(model, audio: np.ndarray, turns, window: float, step: float | None,
                 batch_size: int, embedding=None, segmentation=None) -> dict:
    """Diarize ``audio`` once; wall time split into segmentation, embeddings, clustering and
    the rest, each also as a percentage of the whole.

    ``model`` (a PyTorch model or an exported model's ``OnnxSegmenter``) gives the frame grid
    and the powerset; ``segmentation`` (``(batch [B, T]
    float32, lengths [B] int64) -> log-probs [B, F, C]``) is what is timed for the model,
    by default ``model``'s PyTorch forward (another backend, e.g. an exported model, can be
    passed instead). ``embedding``: an extractor (default resemblyzer).
    """
    from espnet_prune.infer.clustering import AgglomerativeClustering
    from espnet_prune.infer.embeddings import ResemblyzerEmbedding
    from espnet_prune.infer.pipeline import DiarizationPipeline, InferenceConfig
    from espnet_prune.infer.run import model_segmentation

    config = InferenceConfig(window=window, step=step, batch_size=batch_size)
    if hasattr(model, "to_multilabel"):  # an exported model's OnnxSegmenter, no PyTorch model
        model_forward, to_multilabel = model.segmentation, model.to_multilabel
    else:
        model_forward, to_multilabel = model_segmentation(model, "cpu")
    network = Timed(segmentation or model_forward)
    embedding = TimedMethods(embedding or ResemblyzerEmbedding(), ("__call__", "embed_masked"))
    clustering = TimedMethods(AgglomerativeClustering(), ("space", "centroids"))
    pipeline = DiarizationPipeline(
        None, to_multilabel, model.frame_shift, model.frame_length, embedding, clustering,
        config,
    )
    pipeline.segmentation = ReferenceActivity(
        network, turns, len(audio), pipeline.window_starts(len(audio))[2], model.frame_shift,
        model.frame_length, model.powerset,
    )
    cpu_start, start = cpu_seconds(), time.perf_counter()
    segments = pipeline(audio, "bench")
    total = time.perf_counter() - start
    cpu = cpu_seconds() - cpu_start
    duration = len(audio) / RATE
    parts = {"segmentation": network.seconds, "embedding": embedding.total(),
             "clustering": clustering.total()}
    parts["other"] = total - sum(parts.values())
    result = {
        "audio_seconds": duration,
        "windows": int(len(pipeline.window_starts(len(audio))[2])),
        "wall_seconds": round(total, 3),
        "rtf": round(total / duration, 4),
        "cpu_seconds": round(cpu, 3),
        "cpu_rtf": round(cpu / duration, 4),
    }
    result.update({f"{name}_seconds": round(seconds, 3) for name, seconds in parts.items()})
    result.update({f"{name}_percent": round(100 * seconds / total, 1)
                   for name, seconds in parts.items()})
    result["speakers_found"] = len({s.speaker for s in segments})
    return result


def cpu_seconds() -> float:
    """User + system CPU time of this process (all threads): on a shared machine, wall time
    depends on the neighbours; CPU time / number of cores bounds the wall time on idle cores."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    """Peak resident set size of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ------------------------------------------------------------ the diar_bench command's benchmark
# --models rows: name -> (WavLM shape "unpruned"|"pruned", segmentation backend). A backend is
# None (the PyTorch model's forward) or a function model -> segmentation callable
# ``(batch [B, T] float32, lengths [B] int64) -> log_probs [B, F, C]`` (e.g. an exported model
# of the same shape); its time is the "segmentation" column.
def onnx_backend(quantize: str):
    """Backend factory: the model exported to ONNX (``quantize`` ``none`` or ``int8``, as
    ``diar_export`` writes it) and run by onnxruntime with torch's thread count."""

    def segmentation(model):
        import torch

        from espnet_prune.infer.export import export_quantized, onnx_segmentation

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "model.onnx"
            export_quantized(model, path, quantize)
            return onnx_segmentation(path, torch.get_num_threads())[0]  # session in memory

    segmentation.quantize = quantize
    return segmentation


def export_preset(wavlm_name: str, encoder_conf: dict, quantize: str, path: str) -> None:
    """Write the random-weight model of :func:`build_model` (the same seed, so the same
    weights) to ``path`` as ``diar_export`` would."""
    from espnet_prune.infer.export import export_quantized

    export_quantized(build_model(wavlm_name, encoder_conf), path, quantize)


def export_in_child(wavlm_name: str, encoder_conf: dict, quantize: str, path: str) -> str:
    """:func:`export_preset` in a child Python process; returns ``path``."""
    import json
    import subprocess
    import sys

    from espnet_prune.errors import EspnetPruneError

    code = ("import json, sys; from espnet_prune.measure.bench import export_preset; "
            "export_preset(*json.loads(sys.argv[1]))")
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps([wavlm_name, encoder_conf, quantize, path])],
        capture_output=True, text=True)
    if done.returncode != 0:
        raise EspnetPruneError(f"ONNX export for the peak-RSS run failed: {done.stderr[-2000:]}")
    return path


MODEL_ROWS = {
    "unpruned": ("unpruned", None),
    "pruned": ("pruned", None),
    "pruned_onnx": ("pruned", onnx_backend("none")),
    "pruned_int8": ("pruned", onnx_backend("int8")),
}


def embedding_conf(embedding: str, trunk: str) -> dict:
    """The extractor's conf: the ResNet34 takes the ``trunk`` choice."""
    return {"trunk": trunk} if embedding == "wespeaker_resnet34" else {}


def memory_run(preset: str, memory_duration: float, memory_model: str, threads: int,
               window: float, step: float | None, batch_size: int,
               embedding: str = "resemblyzer", trunk: str = "window") -> dict:
    """Diarize a long synthetic recording streamed from a WAV file, as diar_inference does, and
    report the pipeline figures with this process's peak RSS. Run it in a fresh process
    (:func:`measure_memory`) so that ``ru_maxrss`` is this run's peak alone."""
    import torch

    from espnet_prune.infer.pipeline import WavFileAudio

    torch.set_num_threads(threads)
    (unpruned, pruned), encoder_conf = PRESETS[preset]
    shape, backend = MODEL_ROWS[memory_model]
    name = pruned if shape == "pruned" else unpruned
    with tempfile.TemporaryDirectory() as folder:
        segmentation = None
        if getattr(backend, "quantize", None):
            # a deployed run loads an exported file and holds no PyTorch model (as
            # diar_inference --backend onnxruntime); tracing the model for the export here
            # would leave its memory in this process's peak: export in a child process
            from espnet_prune.infer.export import OnnxSegmenter

            onnx = export_in_child(name, encoder_conf, backend.quantize, f"{folder}/model.onnx")
            model = OnnxSegmenter(onnx, threads)
        else:
            model = build_model(name, encoder_conf)
            segmentation = backend(model) if backend else None
        path = f"{folder}/long.wav"
        turns = write_synthetic_wav(path, memory_duration, seed=1)
        extractor = build_bench_embedding(embedding, folder, **embedding_conf(embedding, trunk))
        result = run_pipeline(model, WavFileAudio(path), turns, window, step, batch_size,
                              embedding=extractor, segmentation=segmentation)
    result.update(model=memory_model, wavlm=name, embedding=embedding,
                  peak_rss_mb=round(peak_rss_mb(), 1))
    return result


MEMORY_TAG = "MEMORY_RESULT "


def measure_memory(**run) -> dict:
    """:func:`memory_run` in a child Python process (keyword arguments as JSON); its result."""
    import json
    import subprocess
    import sys

    from espnet_prune.errors import EspnetPruneError

    code = ("import json, sys; from espnet_prune.measure.bench import memory_run, MEMORY_TAG; "
            "print(MEMORY_TAG + json.dumps(memory_run(**json.loads(sys.argv[1]))))")
    done = subprocess.run([sys.executable, "-c", code, json.dumps(run)], capture_output=True,
                          text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith(MEMORY_TAG)]
    if done.returncode != 0 or not lines:
        raise EspnetPruneError(f"peak-RSS run failed: {done.stderr[-2000:]}")
    result = json.loads(lines[-1][len(MEMORY_TAG):])
    result["step"] = run["step"] if run["step"] is not None else 0.1 * run["window"]
    return result


PARTS = ("segmentation", "embedding", "clustering", "other")


def print_pipeline_table(results: dict) -> None:
    """The diar_bench table: one row per model, then the peak-RSS line."""
    rows = [("model", "params", "GMACs/s", "RTF", "CPU-RTF", "seg s (%)", "emb s (%)",
             "clust s (%)", "other s (%)", "windows")]
    for name, r in results["rtf"].items():
        rows.append((f"{name} ({r['wavlm']})", f"{r['params'] / 1e6:.1f}M",
                     f"{r['macs_per_second'] / 1e9:.2f}", f"{r['rtf']:.3f}",
                     f"{r['cpu_rtf']:.3f}",
                     *(f"{r[part + '_seconds']:.1f} ({r[part + '_percent']:.0f} %)"
                       for part in PARTS),
                     str(r["windows"])))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)))
    memory = results.get("memory")
    if memory:
        model = memory.get("model", memory["wavlm"])
        print(f"peak RSS {memory['peak_rss_mb']:.0f} MB for {memory['audio_seconds']:.0f} s "
              f"({model}, {memory['embedding']}, step {memory['step']} s, "
              f"RTF {memory['rtf']:.3f})")


def benchmark_pipeline(preset: str = "base_plus", duration: float = 600.0,
                       memory_duration: float = 7200.0, memory_model: str = "pruned",
                       models: str = "unpruned,pruned", threads: int = 2, window: float = 8.0,
                       step: float | None = None, memory_step: float | None = None,
                       batch_size: int = 8, json_path: str | None = None,
                       embedding: str = "resemblyzer", trunk: str = "window") -> dict:
    """The diar_bench command: RTF of the pipeline with each model of ``models`` (rows of
    :data:`MODEL_ROWS`) on a synthetic recording of ``duration`` s, then (``memory_duration``
    > 0) the peak RSS of a streamed long recording in a child process; prints the table and
    the JSON. ``embedding``: one of :data:`EMBEDDING_NAMES` (``trunk``: the ResNet34's)."""
    import json
    import sys

    import torch

    from espnet_prune.errors import ConfigError
    from espnet_prune.infer.config_schema import check_inference_config
    from espnet_prune.utils.io import check_output_file
    from espnet_prune.utils.values import Rule, check_value

    # every option checked before minutes of benchmarking (one line naming it)
    check_value(duration, Rule(float, low=1.0, high=86400.0), "diar_bench", "--duration")
    check_value(memory_duration, Rule(float, low=0.0, high=86400.0), "diar_bench",
                "--memory_duration")
    check_value(threads, Rule(int, low=1), "diar_bench", "--threads")
    for option, value in (("--step", step), ("--memory_step", memory_step)):
        try:
            check_inference_config({"window": window, "step": value, "batch_size": batch_size},
                                   "diar_bench")
        except ConfigError as exc:
            raise ConfigError(str(exc).replace(": step ", f": {option} ", 1)
                              .replace(": window ", ": --window ", 1)
                              .replace(": batch_size ", ": --batch_size ", 1)) from None
    if json_path:
        check_output_file(json_path, make_parents=True)
    torch.set_num_threads(threads)
    names = [m.strip() for m in models.split(",") if m.strip()]
    if not set(names) <= set(MODEL_ROWS):
        raise ConfigError(f"--models takes some of {', '.join(MODEL_ROWS)}, got {models!r}")
    if embedding not in EMBEDDING_NAMES:
        raise ConfigError(f"--embedding takes one of {EMBEDDING_NAMES}, got {embedding!r}")
    (unpruned, pruned), encoder_conf = PRESETS[preset]
    audio, turns = synthetic_recording(duration)
    results = {
        "config": {"preset": preset, "duration": duration, "threads": threads, "window": window,
                   "step": step if step is not None else 0.1 * window,
                   "batch_size": batch_size, "embedding": embedding, "clustering": "ahc"},
        "rtf": {},
    }
    if embedding == "wespeaker_resnet34":
        results["config"]["trunk"] = trunk
        results["config"]["embedding_weights"] = "random"
    for name in names:
        shape, backend = MODEL_ROWS[name]
        wavlm_name = unpruned if shape == "unpruned" else pruned
        model = build_model(wavlm_name, encoder_conf)
        wavlm = model.frontend.wavlm
        result = {"wavlm": wavlm_name, "params": wavlm.num_params(),
                  "macs_per_second": wavlm.macs_per_second()}
        segmentation = backend(model) if backend else None
        with tempfile.TemporaryDirectory() as folder:
            extractor = build_bench_embedding(embedding, folder,
                                              **embedding_conf(embedding, trunk))
            result.update(run_pipeline(model, audio, turns, window, step, batch_size,
                                       embedding=extractor, segmentation=segmentation))
        results["rtf"][name] = result
        print(f"{name}: {json.dumps(result)}", file=sys.stderr, flush=True)
        del model, segmentation, extractor
    if memory_duration > 0:
        results["memory"] = measure_memory(
            preset=preset, memory_duration=memory_duration, memory_model=memory_model,
            threads=threads, window=window,
            step=memory_step if memory_step is not None else step, batch_size=batch_size,
            embedding=embedding, trunk=trunk)
    print_pipeline_table(results)
    text = json.dumps(results, indent=1)
    print(text)
    if json_path:
        from espnet_prune.utils.datadir import write_text

        write_text(json_path, text + "\n", make_parents=True)
    return results
