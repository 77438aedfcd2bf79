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

from espnet_prune.utils.cli import run_main


def main(argv: list[str] | None = None) -> int:
    from espnet_prune.diar.model_file import parse_task_args
    from espnet_prune.tasks.prune_stages import distill, stage_parser

    distill(parse_task_args(stage_parser(__doc__), argv))
    return 0


if __name__ == "__main__":
    run_main(main)
