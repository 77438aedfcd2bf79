#!/usr/bin/env python3
"""Per-chunk compute and memory of each stage's training step, measured on this machine.

For the recipe's own configs (``conf/``) and a random WavLM of the teacher's shape, one
training step on one chunk of ``--chunk_seconds`` s is run on the CPU for every stage:

* ``flops``: matmul/conv/attention FLOPs of forward + backward, counted by PyTorch's
  ``FlopCounterMode`` (2 FLOPs per multiply-add; element-wise ops are not counted);
* ``activation_bytes``: the tensors autograd keeps for the backward pass (parameters excluded),
  i.e. the per-chunk part of training memory;
* ``params`` (trainable / frozen) and ``cpu_seconds`` (the fastest of ``--repeats`` steps,
  forward + backward + optimiser, on this CPU with ``--threads`` threads).

Inference (stage 7) is one segmentation forward of one window and one WeSpeaker ResNet34 trunk
pass per window. The pruned WavLM of stages 5-6 is, for Base+, the released 80 %-sparse
structure (preset ``base_plus_s80``: 18.9M parameters, 1.13 GMACs/s); for Large, a uniform
structure of the paper's 80 %-sparse size (its CNN, 4 of 16 heads and 600 FFN units in every
layer: 63.9M parameters, 3.36 GMACs/s; the paper's Large s80: 63.3M, 3.8G). The numbers feed
the estimates in the recipe READMEs; run from a recipe directory:

    python -m espnet_prune.bin.estimate_cost --teacher base_plus --json cost_base_plus.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from espnet_prune.utils.frames import num_frames


def pruned_config(teacher: str):
    """The 80 %-sparse student of stages 5-6 (see the module docstring)."""
    from espnet_prune.wavlm import wavlm_config
    from espnet_prune.wavlm.config import override_config

    base_plus_s80 = wavlm_config("base_plus_s80")
    if teacher == "base_plus":
        return base_plus_s80
    return override_config(wavlm_config("large"), {
        "conv_channels": list(base_plus_s80.conv_channels), "extractor_output_scale": True,
        "kept_heads": [list(range(4))] * 24, "ffn_dims": [600] * 24,
    })


def chunk_batch(model_frame_shift: int, model_frame_length: int, seconds: float, seed: int = 0):
    import torch

    samples = int(seconds * 16000)
    frames = num_frames(samples, model_frame_shift, model_frame_length)
    generator = torch.Generator().manual_seed(seed)
    labels = (torch.rand(1, frames, 4, generator=generator) > 0.7).float()
    return {
        "speech": 0.1 * torch.randn(1, samples, generator=generator),
        "speech_lengths": torch.tensor([samples]),
        "spk_labels": labels,
        "spk_labels_lengths": torch.tensor([frames]),
    }


def saved_activation_bytes(model, step) -> int:
    """Bytes of the distinct non-parameter tensors autograd saves during ``step()``."""
    import torch

    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    params |= {b.untyped_storage().data_ptr() for b in model.buffers()}
    seen: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in params and storage.device.type != "meta":
            seen[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step()
    return sum(seen.values())


def measure(name, model, batch, optimizer, repeats: int) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model.train()

    def forward():
        loss = model(**batch)[0]
        return loss

    with FlopCounterMode(display=False) as counter:
        forward_only = None
        with torch.no_grad():
            model(**batch)
        forward_only = counter.get_total_flops()
    with FlopCounterMode(display=False) as counter:
        activations = saved_activation_bytes(model, lambda: forward().backward())
    train_flops = counter.get_total_flops()
    optimizer.zero_grad()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        forward().backward()
        optimizer.step()
        optimizer.zero_grad()
        times.append(time.perf_counter() - start)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    result = {
        "stage": name,
        "forward_flops": forward_only,
        "flops": train_flops,
        "activation_bytes": activations,
        "params_trainable": trainable,
        "params_frozen": total - trainable,
        "cpu_seconds": min(times),
    }
    print(json.dumps(result), flush=True)
    return result


def diar_model(config: str, wavlm: str | None, extra=()):
    from espnet_prune.tasks.diar import PowersetDiarizationTask

    args = PowersetDiarizationTask.get_parser().parse_args(
        ["--config", config, *(["--frontend_conf", f"path={wavlm}"] if wavlm else []), *extra]
    )
    model = PowersetDiarizationTask.build_model(args)
    (optimizer,) = PowersetDiarizationTask.build_optimizers(args, model)
    return model, optimizer


def prune_model(config: str, teacher: str, student: str | None, extra=()):
    from espnet_prune.tasks.distill_prune import DistillPruneTask

    args = DistillPruneTask.get_parser().parse_args(
        ["--config", config, "--teacher_wavlm", teacher, "--num_iters_per_epoch", "1",
         *(["--student_wavlm", student] if student else []), *extra]
    )
    if student:  # post-pruning distillation: no regulariser (as diar_distill sets it)
        args.model_conf = dict(args.model_conf, regularizer=False)
    model = DistillPruneTask.build_model(args)
    (optimizer,) = DistillPruneTask.build_optimizers(args, model)
    return model, optimizer


def rss_bytes() -> int:
    import os

    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_rise(function) -> int:
    """How far the resident memory rises above its level at the start while ``function()``
    runs (sampled every 5 ms by a thread: torch ops release the GIL; glibc's free pages are
    trimmed first)."""
    import ctypes
    import gc
    import threading

    gc.collect()
    try:  # hand freed heap pages back to the OS, so that re-using them shows as a rise
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    start, peak, done = rss_bytes(), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_bytes())
            done.wait(0.005)

    thread = threading.Thread(target=sample)
    thread.start()
    try:
        function()
    finally:
        done.set()
        thread.join()
    return max(0, max(peak[0], rss_bytes()) - start)


def inference_costs(model, seconds: float, windows: int = 4) -> list[dict]:
    """FLOPs of one window; memory: the resident-memory rise of a batch of ``windows``
    windows, per window."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from espnet_prune.infer.wespeaker import WeSpeakerResNet34

    model.eval()
    wav = 0.1 * torch.randn(1, int(seconds * 16000))
    with torch.no_grad():
        transient = peak_rss_rise(lambda: model.predict(wav.repeat(windows, 1))) / windows
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.predict(wav)
    segmentation = counter.get_total_flops()
    resnet = WeSpeakerResNet34().eval()
    with torch.no_grad():
        fbank = resnet.fbank(wav[0])[None]
        with FlopCounterMode(display=False) as counter:
            resnet.resnet.frame_features(fbank)
        embedding_transient = peak_rss_rise(
            lambda: resnet.resnet.frame_features(fbank.repeat(windows, 1, 1))) / windows
    out = [{"stage": "7_segmentation_window", "forward_flops": segmentation,
            "transient_bytes_per_window": transient},
           {"stage": "7_wespeaker_window", "forward_flops": counter.get_total_flops(),
            "transient_bytes_per_window": embedding_transient}]
    for row in out:
        print(json.dumps(row), flush=True)
    return out


STAGE_CONFIGS = {  # stage row -> the recipe config whose batch_size / max_epoch it runs with
    "3_fbank": "train_fbank.yaml",
    "3_teacher": "train_teacher_wavlm_{teacher}.yaml",
    "4_prune": "{prune}",
    "5_distill": "distill_post.yaml",
    "6_finetune": "train_pruned_wavlm_{teacher}.yaml",
}
CONTEXT_BYTES = 1.5e9  # CUDA context, cuDNN workspaces, allocator slack (assumption)


def report(measured: dict, conf: Path, hours: tuple[float, float, float], gpus: int,
           tflops: float) -> str:
    """Markdown table: per stage GPU time (4 GPUs at ``tflops`` sustained each) and memory per
    GPU, from the measured per-chunk FLOPs / activations and the configs' batch and epochs."""
    import yaml

    teacher = measured["teacher"]
    rows = {r["stage"]: r for r in measured["rows"]}
    prune = "prune_large_s80.yaml" if teacher == "large" else "prune_s80.yaml"
    train_h, dev_h, test_h = hours
    rate = gpus * tflops * 1e12
    out = [f"|stage ({teacher})|GFLOP per 8 s chunk (train step)|batch per GPU|"
           f"GPU memory per GPU|time per epoch ({gpus} GPUs)|max epochs|time at max epochs|",
           "|---|---|---|---|---|---|---|"]
    for stage, name in STAGE_CONFIGS.items():
        row = rows.get(stage)
        if row is None:
            continue
        config = yaml.safe_load((conf / name.format(teacher=teacher, prune=prune)).read_text())
        shift = float(config.get("chunk_shift", 6.0))
        valid_shift = float(config.get("valid_chunk_shift") or config.get("chunk_size", 8.0))
        train_chunks = train_h * 3600 / shift
        valid_chunks = dev_h * 3600 / valid_shift
        per_gpu = max(1, int(config["batch_size"]) // gpus)
        memory = (16 * row["params_trainable"] + 4 * row["params_frozen"]
                  + per_gpu * row["activation_bytes"] + CONTEXT_BYTES)
        epoch = (train_chunks * row["flops"] + valid_chunks * row["forward_flops"]) / rate
        epochs = int(config["max_epoch"])
        out.append(f"|{stage}|{row['flops'] / 1e9:.0f}|{per_gpu}|{memory / 1e9:.0f} GB|"
                   f"{epoch / 60:.0f} min|{epochs}|{epoch * epochs / 3600:.1f} h|")
    windows = test_h * 3600 / 0.8  # conf/inference.yaml: 8 s windows every 0.8 s
    inference = yaml.safe_load((conf / "inference.yaml").read_text())
    batch = int(inference.get("batch_size", 32))
    wespeaker = rows["7_wespeaker_window"]["forward_flops"]
    wespeaker_bytes = rows["7_wespeaker_window"]["transient_bytes_per_window"]
    for key, label in (("7_segmentation_window_fbank", "fbank"),
                       ("7_segmentation_window", "teacher"),
                       ("7_segmentation_window_pruned", "pruned")):
        if key not in rows:
            continue
        per_window = rows[key]["forward_flops"] + wespeaker
        seconds = windows * per_window / (tflops * 1e12)
        # segmentation, then the embeddings of the same windows: the larger of the two
        memory = batch * max(rows[key]["transient_bytes_per_window"], wespeaker_bytes)
        memory += CONTEXT_BYTES
        out.append(f"|7 inference, {label} (1 GPU)|{per_window / 1e9:.0f} per window|"
                   f"{batch} windows|{memory / 1e9:.0f} GB|-|-|"
                   f"{seconds / 3600:.1f} h ({windows / 1e3:.0f}k windows)|")
    return "\n".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", choices=("base_plus", "large"), default="base_plus")
    parser.add_argument("--conf", default="conf", help="the recipe's conf/ directory")
    parser.add_argument("--chunk_seconds", type=float, default=8.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--stages", default="3,4,5,6,7", help="comma-separated subset")
    parser.add_argument("--json", default=None, help="write the rows here too")
    parser.add_argument("--report", default=None,
                        help="no measurement: print the table of this --json output instead")
    parser.add_argument("--hours", default="280,24,32",
                        help="train,dev,test hours of audio for --report (default: meetings3)")
    parser.add_argument("--gpus", type=int, default=4)
    parser.add_argument("--tflops", type=float, default=10.0,
                        help="sustained TFLOP/s per GPU assumed by --report")
    args = parser.parse_args(argv)
    if args.report:
        hours = tuple(float(h) for h in args.hours.split(","))
        print(report(json.loads(Path(args.report).read_text()), Path(args.conf), hours,
                     args.gpus, args.tflops))
        return 0

    import torch

    from espnet_prune.wavlm import WavLM, save_wavlm, wavlm_config

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    conf = Path(args.conf)
    stages = {int(s) for s in args.stages.split(",")}
    large = args.teacher == "large"
    prune_conf = conf / ("prune_large_s80.yaml" if large else "prune_s80.yaml")
    distill_extra = ["--model_conf", "distill_layers=0,8,16,24"] if large else []
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        teacher = Path(tmp) / "teacher.pt"
        save_wavlm(WavLM(wavlm_config(args.teacher)), teacher)
        pruned = Path(tmp) / "pruned.pt"
        save_wavlm(WavLM(pruned_config(args.teacher)), pruned)
        model, optim = diar_model(str(conf / "train_fbank.yaml"), None)
        batch = chunk_batch(model.frame_shift, model.frame_length, args.chunk_seconds)
        if 7 in stages:
            rows += [dict(r, stage=r["stage"] + "_fbank")
                     for r in inference_costs(model, args.chunk_seconds)[:1]]
        if 3 in stages:
            rows.append(measure("3_fbank", model, batch, optim, args.repeats))
        del model, optim
        wav_model, wav_optim = diar_model(
            str(conf / f"train_teacher_wavlm_{args.teacher}.yaml"), str(teacher))
        wav_batch = chunk_batch(wav_model.frame_shift, wav_model.frame_length,
                                args.chunk_seconds)
        if 7 in stages:
            rows += inference_costs(wav_model, args.chunk_seconds)
        if 3 in stages:
            rows.append(measure("3_teacher", wav_model, wav_batch, wav_optim, args.repeats))
        del wav_model, wav_optim
        if 4 in stages:
            model, optim = prune_model(str(prune_conf), str(teacher), None)
            rows.append(measure("4_prune", model, wav_batch, optim, args.repeats))
            del model, optim
        if 5 in stages:
            model, optim = prune_model(str(conf / "distill_post.yaml"), str(teacher),
                                       str(pruned), distill_extra)
            rows.append(measure("5_distill", model, wav_batch, optim, args.repeats))
            del model, optim
        if 6 in stages:
            model, optim = diar_model(str(conf / f"train_pruned_wavlm_{args.teacher}.yaml"),
                                      str(pruned))
            rows.append(measure("6_finetune", model, wav_batch, optim, args.repeats))
            if 7 in stages:
                rows += [dict(r, stage=r["stage"] + "_pruned")
                         for r in inference_costs(model, args.chunk_seconds)[:1]]
    if args.json:
        from espnet_prune.utils.datadir import write_text

        write_text(args.json, json.dumps({"teacher": args.teacher,
                                          "chunk_seconds": args.chunk_seconds,
                                          "threads": args.threads, "rows": rows},
                                         indent=1) + "\n", make_parents=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
