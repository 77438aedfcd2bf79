"""Measure how close pruning lands on the target (not collected by pytest: minutes of CPU).

Trains DistillPruneModel (the ESPnet model of diar_prune, same loss, optimiser groups and
schedule) on a small random WavLM with random audio, then prunes the student physically and
prints expected vs real sparsity as JSON.  Example (the numbers in the issue-6 report):

    tools/venv/bin/python test/prune/sparsity_acceptance.py --target params --sparsity 0.8 \
        --steps 1800 --warmup 1200 --log_alpha_lr 0.05 --lambda_lr 0.2
"""

import argparse
import copy
import json
import time

import torch

from espnet_prune.prune.export import pruning_summary
from espnet_prune.prune.model import DistillPruneModel
from espnet_prune.prune.optim import build_optimizer, param_groups
from espnet_prune.wavlm import WavLM, WavLMConfig


def small_config() -> WavLMConfig:
    """4 layers, 8 heads, FFN 256, 64 channels: only 1.3 % of the parameters are not prunable."""
    return WavLMConfig(conv_channels=[64] * 7, embed_dim=64, num_layers=4, num_heads=8,
                       ffn_dims=[256] * 4, pos_conv_kernel=8, pos_conv_groups=16)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target", choices=["params", "macs"], default="params")
    parser.add_argument("--sparsity", type=float, default=0.8)
    parser.add_argument("--steps", type=int, default=1800)
    parser.add_argument("--warmup", type=int, default=1200)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--log_alpha_lr", type=float, default=2e-2)
    parser.add_argument("--lambda_lr", type=float, default=2e-2)
    parser.add_argument("--post_steps", type=int, default=300,
                        help="post-pruning distillation steps (no regulariser) after pruning")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    teacher = WavLM(small_config()).eval()
    student = copy.deepcopy(teacher)
    student.add_pruning_gates(("conv", "head", "interm"))
    model = DistillPruneModel(teacher, student, distill_layers=[0, 2, 4], target=args.target,
                              target_sparsity=args.sparsity, warmup_steps=args.warmup)
    rates = {"weights": args.lr, "log_alpha": args.log_alpha_lr, "lambda": args.lambda_lr}
    optimizer = build_optimizer(torch.optim.AdamW,
                                param_groups(model, model.parameter_groups(), rates))
    model.train()
    start, history = time.time(), []
    for step in range(args.steps):
        loss, stats, _ = model(0.1 * torch.randn(1, 4000), None)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 250 == 0 or step == args.steps - 1:
            row = {k: round(float(stats[k]), 4) for k in
                   ("distill_loss", "expected_sparsity", "target_sparsity", "lambda1", "lambda2")}
            history.append(row)
            print(step, row, f"{time.time() - start:.0f}s", flush=True)
    summary = pruning_summary(teacher, student)
    print(json.dumps({k: v for k, v in summary.items() if "sparsity" in k}))
    if args.post_steps:
        post_distillation(teacher, student, args)


def post_distillation(teacher, student, args):
    """Physically prune, then distil without the regulariser; print first/last mean loss."""
    pruned = copy.deepcopy(student).eval()
    pruned.prune()
    model = DistillPruneModel(teacher, pruned.train(), distill_layers=[0, 2, 4],
                              regularizer=False)
    rates = {"weights": args.lr, "log_alpha": 0.0, "lambda": 0.0}
    optimizer = build_optimizer(torch.optim.AdamW,
                                param_groups(model, model.parameter_groups(), rates))
    model.train()
    losses = []
    for _ in range(args.post_steps):
        loss, _, _ = model(0.1 * torch.randn(1, 4000), None)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    window = max(1, len(losses) // 10)
    print(json.dumps({"post_distill_first": sum(losses[:window]) / window,
                      "post_distill_last": sum(losses[-window:]) / window}))


if __name__ == "__main__":
    main()
