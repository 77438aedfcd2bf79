"""Prune the fine-tuned diarization WavLM to a target sparsity (distillation + L0 Lagrangian).

An ESPnet-trainer run (``--resume true`` continues from ``checkpoint.pth``: gates, λs, warm-up
position).  At the end the run's last model (with ``best_model_criterion:
[valid, sparsity_gap, min]``: the epoch closest to the target) is exported to
``--export_dir`` (default ``--output_dir``): ``wavlm_teacher.pt`` (the fine-tuned teacher's
WavLM), ``wavlm_masked.pt`` (the student with its gates, input of ``wavlm_prune``),
``gates.png`` and ``prune_summary.json``; per-step sparsity/λ/loss values are in
``prune_steps.tsv``.

    python -m espnet_prune.bin.diar_prune --config conf/prune_s80.yaml \
        --teacher EXP/valid.loss.ave.pth --teacher_config EXP/config.yaml \
        --output_dir EXP_PRUNE [data options of diar_train]
"""

from __future__ import annotations

import logging
from pathlib import Path

from espnet_prune.errors import CheckpointError
from espnet_prune.utils.cli import run_main


def trained_model(task, output_dir: Path, checkpoint: str):
    """Rebuild the run's model from its config.yaml and load ``checkpoint`` (a file name)."""
    model_file = output_dir / checkpoint
    if not model_file.exists():
        raise CheckpointError(f"{model_file}: not found (did the training run finish?)")
    model, _ = task.build_model_from_file(output_dir / "config.yaml", model_file, "cpu")
    return model.eval()


def export_checkpoint(best_model_criterion, output_dir: Path) -> str:
    """The checkpoint whose student is exported: with ``[valid, sparsity_gap, min]`` among the
    criteria, the epoch whose expected sparsity is closest to the target (the Lagrangian
    oscillates around it, and the last epoch can be past it); otherwise the last epoch."""
    criteria = [tuple(c) for c in best_model_criterion or []]
    if ("valid", "sparsity_gap", "min") in criteria:
        best = "valid.sparsity_gap.best.pth"
        if (output_dir / best).exists():
            return best
        logging.warning("%s not found; exporting latest.pth", output_dir / best)
    return "latest.pth"


def main(argv: list[str] | None = None) -> int:
    from espnet_prune.prune.export import export_pruning_stage
    from espnet_prune.tasks.distill_prune import DistillPruneTask, model_conf_with_defaults

    parser = DistillPruneTask.get_parser()
    parser.description = __doc__
    args = parser.parse_args(argv)
    if not model_conf_with_defaults(args.model_conf)["regularizer"]:
        args.model_conf = dict(args.model_conf, regularizer=True)
        logging.warning("diar_prune always uses the sparsity regulariser (see diar_distill)")
    if not args.print_config:
        DistillPruneTask.check_required_command_args(args)
        DistillPruneTask.validate_data(args)
    DistillPruneTask.main(args=args)
    if args.dry_run or args.collect_stats:
        return 0
    output_dir = Path(args.output_dir)
    checkpoint = export_checkpoint(args.best_model_criterion, output_dir)
    model = trained_model(DistillPruneTask, output_dir, checkpoint)
    summary = export_pruning_stage(model, args.export_dir or output_dir,
                                   {"exported_checkpoint": checkpoint})
    print(
        f"{checkpoint}: expected sparsity {summary['expected_param_sparsity']:.4f} params / "
        f"{summary['expected_macs_sparsity']:.4f} MACs, "
        f"after pruning {summary['param_sparsity']:.4f} params / "
        f"{summary['macs_sparsity']:.4f} MACs; target {summary['target_sparsity']}"
    )
    reached = summary["param_sparsity" if summary["target"] == "params" else "macs_sparsity"]
    if abs(reached - summary["target_sparsity"]) > 0.01:
        logging.warning(
            "%s sparsity after pruning is %.4f, target %s: the Lagrangian has not settled; "
            "train longer, or export the epoch closest to the target with "
            "best_model_criterion [valid, sparsity_gap, min] (espnet_prune/prune/CONVERGENCE.md)",
            summary["target"], reached, summary["target_sparsity"],
        )
    return 0


if __name__ == "__main__":
    run_main(main)
