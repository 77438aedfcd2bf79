"""Post-pruning distillation: the physically pruned student learns the teacher again, without
the sparsity regulariser (same task and model as ``diar_prune``).

An ESPnet-trainer run (resumable).  The student chosen by ``--export_policy`` (default: the
best epoch by validation loss; the paper configs: the average of the 5 best epochs after the
validation-loss peak, as the reference) is exported as ``--export_dir``/wavlm_pruned.pt
(default ``--output_dir``), the WavLM of the final fine-tune.

    python -m espnet_prune.bin.diar_distill --config conf/distill_post.yaml \
        --teacher_wavlm EXP_PRUNE/wavlm_teacher.pt --student_wavlm EXP_PRUNE/wavlm_pruned_raw.pt \
        --output_dir EXP_PRUNE/post_distill --export_dir EXP_PRUNE [data options]
"""

from __future__ import annotations

from pathlib import Path

from espnet_prune.errors import ConfigError
from espnet_prune.utils.cli import run_main


def main(argv: list[str] | None = None) -> int:
    from espnet_prune.bin.diar_prune import check_inputs_and_outputs, export_policy, trained_model
    from espnet_prune.prune.export import PRUNED_FILE, export_student, select_export_checkpoint
    from espnet_prune.prune.model import is_export_process
    from espnet_prune.tasks.distill_prune import DistillPruneTask
    from espnet_prune.tasks.model_file import parse_task_args

    parser = DistillPruneTask.get_parser()
    parser.description = __doc__
    args = parse_task_args(parser, argv)
    if args.student_wavlm is None:
        raise ConfigError("--student_wavlm (the physically pruned WavLM) is required")
    args.model_conf = dict(args.model_conf, regularizer=False)
    if not args.print_config:
        DistillPruneTask.check_required_command_args(args)
        check_inputs_and_outputs(args)
        export_policy(args, auto="best")  # fails before training, not after
        DistillPruneTask.validate_data(args)
    DistillPruneTask.main(args=args)
    if args.dry_run or args.collect_stats or not is_export_process(args):
        return 0  # several processes (torchrun, --dist_rank): rank 0 alone exports
    output_dir = Path(args.output_dir)
    checkpoint, chosen = select_export_checkpoint(
        output_dir, export_policy(args, auto="best"), args.export_nbest, args.export_criterion)
    model = trained_model(DistillPruneTask, output_dir, checkpoint)
    path = export_student(model, Path(args.export_dir or output_dir) / PRUNED_FILE)
    averaged = chosen.get("averaged_epochs")
    print(f"wrote {path} ({model.student.num_params()} parameters) from {checkpoint}"
          + (f" (epochs {averaged})" if averaged else ""))
    return 0


if __name__ == "__main__":
    run_main(main)
