"""Post-pruning distillation: the physically pruned student learns the teacher again, without
the sparsity regulariser (same task and model as ``diar_prune``).

An ESPnet-trainer run (resumable).  The best model by validation loss is exported as
``--export_dir``/wavlm_pruned.pt (default ``--output_dir``), the WavLM of the final fine-tune.

    python -m espnet_prune.bin.diar_distill --config conf/distill_post.yaml \
        --teacher_wavlm EXP_PRUNE/wavlm_teacher.pt --student_wavlm EXP_PRUNE/wavlm_pruned_raw.pt \
        --output_dir EXP_PRUNE/post_distill --export_dir EXP_PRUNE [data options]
"""

from __future__ import annotations

from pathlib import Path

from espnet_prune.errors import ConfigError
from espnet_prune.utils.cli import run_main


def main(argv: list[str] | None = None) -> int:
    from espnet_prune.bin.diar_prune import trained_model
    from espnet_prune.prune.export import PRUNED_FILE, export_student
    from espnet_prune.tasks.distill_prune import DistillPruneTask

    parser = DistillPruneTask.get_parser()
    parser.description = __doc__
    args = parser.parse_args(argv)
    if args.student_wavlm is None:
        raise ConfigError("--student_wavlm (the physically pruned WavLM) is required")
    args.model_conf = dict(args.model_conf, regularizer=False)
    if not args.print_config:
        DistillPruneTask.check_required_command_args(args)
        DistillPruneTask.validate_data(args)
    DistillPruneTask.main(args=args)
    if args.dry_run or args.collect_stats:
        return 0
    output_dir = Path(args.output_dir)
    best = output_dir / "valid.loss.best.pth"
    checkpoint = best.name if best.exists() else "latest.pth"
    model = trained_model(DistillPruneTask, output_dir, checkpoint)
    path = export_student(model, Path(args.export_dir or output_dir) / PRUNED_FILE)
    print(f"wrote {path} ({model.student.num_params()} parameters)")
    return 0


if __name__ == "__main__":
    run_main(main)
