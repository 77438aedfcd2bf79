"""Measure how close pruning lands on the target (not collected by pytest: minutes of CPU).

Trains DistillPruneModel (the ESPnet model of diar_prune: same loss, optimiser groups and
schedule) with a frozen teacher WavLM and a gated copy, physically prunes the student, distils
the pruned network again without the regulariser, and prints one JSON line: expected vs real
sparsity, the distillation loss at the start and end of each run, and the gate plot's path.

Teacher: ``--teacher`` (a WavLM checkpoint, e.g. the mini recipe's exp/prune/wavlm_teacher.pt)
or a random ``--preset``.  Audio: random chunks of ``--data_dir`` (a Kaldi-style dir, e.g. the
mini recipe's dump/train) or white noise.  Made the exploration table of
espnet_prune/prune/CONVERGENCE.md (the acceptance runs use the real CLIs:
egs2/mini_meeting/diar1/local/sparsity_acceptance.sh).  Example::

    python -m espnet_prune.bin.sparsity_acceptance \
        --teacher egs2/mini_meeting/diar1/exp/prune/wavlm_teacher.pt \
        --data_dir egs2/mini_meeting/diar1/dump/train --target params --sparsity 0.8
"""

import argparse
import copy
import json
import time

import numpy as np
import torch

from espnet_prune.prune.export import pruning_summary
from espnet_prune.prune.model import DistillPruneModel
from espnet_prune.prune.optim import build_optimizer, param_groups
from espnet_prune.prune.plot import plot_kept_units
from espnet_prune.utils.audio import read_audio
from espnet_prune.utils.datadir import read_scp
from espnet_prune.wavlm import WavLM
from espnet_prune.wavlm.checkpoint import load_wavlm
from espnet_prune.wavlm.config import wavlm_config


class ChunkSampler:
    """Random fixed-length chunks from the recordings of a data dir (or noise without one)."""

    def __init__(self, data_dir: str | None, chunk_seconds: float, batch_size: int, seed: int):
        self.samples = int(chunk_seconds * 16000)
        self.batch_size = batch_size
        self.rng = np.random.default_rng(seed)
        self.recordings = []
        if data_dir:
            for path in read_scp(f"{data_dir}/wav.scp").values():
                audio = read_audio(path)
                if len(audio) >= self.samples:
                    self.recordings.append(audio)
            if not self.recordings:
                raise SystemExit(f"{data_dir}: no recording of at least {chunk_seconds} s")

    def batch(self) -> torch.Tensor:
        if not self.recordings:
            return 0.1 * torch.randn(self.batch_size, self.samples)
        chunks = []
        for _ in range(self.batch_size):
            audio = self.recordings[self.rng.integers(len(self.recordings))]
            start = self.rng.integers(len(audio) - self.samples + 1)
            chunks.append(audio[start:start + self.samples])
        return torch.from_numpy(np.stack(chunks))


def lr_factor(schedule: str, steps: int, warmup: int):
    """Multiplier of every group's learning rate at a step (DPHuBERT-style linear schedules)."""
    def factor(step):
        if schedule == "constant":
            return 1.0
        if schedule == "warmup_decay" and step < warmup:
            return (step + 1) / warmup
        if schedule == "decay" and step < warmup:
            return 1.0
        return max(0.0, (steps - step) / max(1, steps - warmup))
    return factor


def train(model, sampler, steps, rates, log_every, label, schedule="constant", warmup=0):
    optimizer = build_optimizer(torch.optim.AdamW,
                                param_groups(model, model.parameter_groups(), rates))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(schedule, steps, warmup))
    model.train()
    start, losses = time.time(), []
    for step in range(steps):
        loss, stats, _ = model(sampler.batch(), None)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(float(stats["distill_loss"]))
        if log_every and (step % log_every == 0 or step == steps - 1):
            keys = ("distill_loss", "expected_sparsity", "target_sparsity", "lambda1", "lambda2")
            row = {k: round(float(stats[k]), 4) for k in keys if k in stats}
            print(label, step, row, f"{time.time() - start:.0f}s", flush=True)
    return losses


def window_mean(values, first: bool, fraction=0.1):
    n = max(1, int(len(values) * fraction))
    part = values[:n] if first else values[-n:]
    return sum(part) / len(part)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", help="WavLM checkpoint of the fine-tuned teacher")
    parser.add_argument("--preset", default="mini", help="random teacher without --teacher")
    parser.add_argument("--data_dir", help="Kaldi-style data dir; white noise without it")
    parser.add_argument("--chunk", type=float, default=4.0, help="seconds per chunk")
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--distill_layers", default=None,
                        help="comma-separated; default: 0 and every layer")
    parser.add_argument("--target", choices=["params", "macs"], default="params")
    parser.add_argument("--sparsity", type=float, default=0.8)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--log_alpha_lr", type=float, default=2e-2)
    parser.add_argument("--lambda_lr", type=float, default=2e-2)
    parser.add_argument("--lr_schedule", choices=["constant", "decay", "warmup_decay"],
                        default="constant",
                        help="all learning rates: constant (the paper), linear decay to 0 after "
                        "the sparsity warm-up, or linear warm-up then decay (DPHuBERT)")
    parser.add_argument("--post_steps", type=int, default=200,
                        help="post-pruning distillation steps (no regulariser) after pruning")
    parser.add_argument("--plot", default="/tmp/sparsity_acceptance_gates.png")
    parser.add_argument("--log_every", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    teacher = (load_wavlm(args.teacher) if args.teacher
               else WavLM(wavlm_config(args.preset))).eval()
    layers = (list(range(teacher.config.num_layers + 1)) if args.distill_layers is None
              else [int(x) for x in args.distill_layers.split(",")])
    sampler = ChunkSampler(args.data_dir, args.chunk, args.batch_size, args.seed)
    student = copy.deepcopy(teacher)
    student.add_pruning_gates(("conv", "head", "interm"))
    model = DistillPruneModel(teacher, student, distill_layers=layers, target=args.target,
                              target_sparsity=args.sparsity, warmup_steps=args.warmup)
    rates = {"weights": args.lr, "log_alpha": args.log_alpha_lr, "lambda": args.lambda_lr}
    started = time.time()
    prune_losses = train(model, sampler, args.steps, rates, args.log_every, "prune",
                         args.lr_schedule, args.warmup)
    summary = pruning_summary(teacher, student)
    plot_kept_units(summary["kept"], summary["original"], args.plot,
                    title=f"{args.target} sparsity {summary[_key(args.target)]:.3f}")
    result = {k: round(v, 4) for k, v in summary.items() if "sparsity" in k}
    result.update(target=args.target, target_sparsity=args.sparsity, steps=args.steps,
                  warmup=args.warmup, lr_schedule=args.lr_schedule, plot=args.plot,
                  error=round(summary[_key(args.target)] - args.sparsity, 4),
                  prune_distill_loss_first=window_mean(prune_losses, True),
                  prune_distill_loss_last=window_mean(prune_losses, False))
    if args.post_steps:
        pruned = copy.deepcopy(student).eval()
        pruned.prune()
        post = DistillPruneModel(teacher, pruned.train(), distill_layers=layers,
                                 regularizer=False)
        post_losses = train(post, sampler, args.post_steps,
                            {"weights": args.lr, "log_alpha": 0.0, "lambda": 0.0},
                            args.log_every, "post")
        result.update(post_distill_loss_first=window_mean(post_losses, True),
                      post_distill_loss_last=window_mean(post_losses, False))
    result["seconds"] = round(time.time() - started, 1)
    print(json.dumps(result))


def _key(target: str) -> str:
    return "param_sparsity" if target == "params" else "macs_sparsity"


if __name__ == "__main__":
    main()
