"""Prune the fine-tuned diarization WavLM to a target sparsity (distillation + L0 Lagrangian).

An ESPnet-trainer run (``--resume true`` continues from ``checkpoint.pth``: gates, λs, warm-up
position).  At the end the student chosen by ``--export_policy`` (the paper configs: the
average of the 5 best epochs after the validation-loss peak, gate log-alphas included, as the
reference; default: the last epoch, or with ``best_model_criterion [valid, sparsity_gap,
min]`` the epoch closest to the target) is exported to
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
    """Rebuild the run's model from its config.yaml and load ``checkpoint`` (a file name),
    without unpickling and strictly (:func:`espnet_prune.tasks.model_file.load_trained_model`)."""
    from espnet_prune.tasks.model_file import load_trained_model

    model_file = output_dir / checkpoint
    if not model_file.exists():
        raise CheckpointError(f"{model_file}: not found (did the training run finish?)")
    return load_trained_model(task, output_dir / "config.yaml", model_file, "cpu",
                              config_option="run config", model_option="run model")


def check_inputs_and_outputs(args) -> None:
    """Fail in seconds, before any data or model is loaded: the teacher's config must be valid
    YAML and the output/export directories creatable and writable (one line naming them)."""
    from espnet_prune.tasks.model_file import read_train_config
    from espnet_prune.utils.io import check_output_dir

    if getattr(args, "teacher_config", None):
        read_train_config(args.teacher_config, "--teacher_config")
    for directory in {args.output_dir, args.export_dir or args.output_dir}:
        if directory:
            check_output_dir(directory)


def export_checkpoint(args, output_dir: Path) -> tuple[str, dict]:
    """The checkpoint whose student is exported and what was chosen, by ``--export_policy``
    (:func:`espnet_prune.prune.export.select_export_checkpoint`): the paper configs average
    the 5 best epochs after the validation-loss peak (the reference's rule); ``auto`` keeps the
    epoch whose expected sparsity is closest to the target when ``[valid, sparsity_gap, min]``
    is a criterion (short runs: the Lagrangian oscillates around the target and the last epoch
    can be past it), else the last epoch."""
    from espnet_prune.prune.export import select_export_checkpoint

    return select_export_checkpoint(output_dir, export_policy(args), args.export_nbest,
                                    args.export_criterion)


def export_policy(args, auto: str = "closest") -> str:
    """``--export_policy`` resolved and checked (before training: see main)."""
    from espnet_prune.prune.export import resolve_export_policy

    return resolve_export_policy(args.export_policy, args.best_model_criterion,
                                 args.keep_nbest_models, args.max_epoch, auto=auto)


def main(argv: list[str] | None = None) -> int:
    from espnet_prune.prune.export import export_pruning_stage
    from espnet_prune.prune.model import is_export_process
    from espnet_prune.tasks.distill_prune import DistillPruneTask, model_conf_with_defaults
    from espnet_prune.tasks.model_file import parse_task_args

    parser = DistillPruneTask.get_parser()
    parser.description = __doc__
    args = parse_task_args(parser, argv)
    if not model_conf_with_defaults(args.model_conf)["regularizer"]:
        args.model_conf = dict(args.model_conf, regularizer=True)
        logging.warning("diar_prune always uses the sparsity regulariser (see diar_distill)")
    if not args.print_config:
        DistillPruneTask.check_required_command_args(args)
        check_inputs_and_outputs(args)
        export_policy(args)  # a config the export cannot serve fails now, not after training
        DistillPruneTask.validate_data(args)
    DistillPruneTask.main(args=args)
    if args.dry_run or args.collect_stats or not is_export_process(args):
        return 0  # several processes (torchrun, --dist_rank): rank 0 alone exports
    output_dir = Path(args.output_dir)
    checkpoint, chosen = export_checkpoint(args, output_dir)
    model = trained_model(DistillPruneTask, output_dir, checkpoint)
    summary = export_pruning_stage(model, args.export_dir or output_dir,
                                   {"exported_checkpoint": checkpoint, **chosen})
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
