"""The pruning stage (``diar_prune``) and the post-pruning distillation (``diar_distill``) as
runs: what can be checked fails in seconds, then ESPnet's trainer runs (resumable), then rank 0
exports what the next stage reads (:mod:`espnet_prune.prune.export`)."""

from __future__ import annotations

import logging
from pathlib import Path

from espnet_prune.errors import ConfigError
from espnet_prune.prune.export import (
    PRUNED_FILE,
    export_checkpoint,
    export_policy,
    export_pruning_stage,
    export_student,
    trained_model,
)
from espnet_prune.prune.model import is_export_process
from espnet_prune.tasks.distill_prune import DistillPruneTask, model_conf_with_defaults


def stage_parser(description: str):
    """The options of both stages: those of :class:`DistillPruneTask`."""
    parser = DistillPruneTask.get_parser()
    parser.description = description
    return parser


def check_inputs_and_outputs(args) -> None:
    """Fail in seconds, before any data or model is loaded: the teacher's config must be valid
    YAML and the output/export directories creatable and writable (one line naming them)."""
    from espnet_prune.diar.model_file import read_train_config
    from espnet_prune.utils.io import check_output_dir

    if getattr(args, "teacher_config", None):
        read_train_config(args.teacher_config, "--teacher_config")
    for directory in {args.output_dir, args.export_dir or args.output_dir}:
        if directory:
            check_output_dir(directory)


def run_training(args, auto_policy: str) -> bool:
    """Checks, then ESPnet's training; whether this process exports afterwards."""
    if not args.print_config:
        DistillPruneTask.check_required_command_args(args)
        check_inputs_and_outputs(args)
        export_policy(args, auto_policy)  # a config the export cannot serve fails now
        DistillPruneTask.validate_data(args)
    DistillPruneTask.main(args=args)
    # several processes (torchrun, --dist_rank): rank 0 alone exports
    return not (args.dry_run or args.collect_stats) and is_export_process(args)


def prune(args) -> None:
    """``diar_prune``: distillation with the sparsity regulariser, then the chosen epoch's
    teacher, masked student, gate plot and summary are exported."""
    if not model_conf_with_defaults(args.model_conf)["regularizer"]:
        args.model_conf = dict(args.model_conf, regularizer=True)
        logging.warning("diar_prune always uses the sparsity regulariser (see diar_distill)")
    if not run_training(args, "closest"):
        return
    output_dir = Path(args.output_dir)
    checkpoint, chosen = export_checkpoint(args, output_dir, "closest")
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


def distill(args) -> None:
    """``diar_distill``: the physically pruned student learns the teacher again without the
    regulariser; the chosen epoch's student is exported as the final WavLM."""
    if args.student_wavlm is None:
        raise ConfigError("--student_wavlm (the physically pruned WavLM) is required")
    args.model_conf = dict(args.model_conf, regularizer=False)
    if not run_training(args, "best"):
        return
    output_dir = Path(args.output_dir)
    checkpoint, chosen = export_checkpoint(args, output_dir, "best")
    model = trained_model(DistillPruneTask, output_dir, checkpoint)
    path = export_student(model, Path(args.export_dir or output_dir) / PRUNED_FILE)
    averaged = chosen.get("averaged_epochs")
    print(f"wrote {path} ({model.student.num_params()} parameters) from {checkpoint}"
          + (f" (epochs {averaged})" if averaged else ""))
