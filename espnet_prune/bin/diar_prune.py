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
Pruning before fine-tuning (the earlier order the paper compares with): the teacher is the
pre-trained WavLM checkpoint, and the data dirs are read without labels (``wav.scp`` only)::

    python -m espnet_prune.bin.diar_prune --config conf/prune_s80.yaml \
        --teacher_wavlm exp/wavlm/wavlm_base_plus.pt --unlabelled_data true \
        --output_dir EXP_PRUNE_PT [data options of diar_train]
"""

from __future__ import annotations

from espnet_prune.utils.cli import run_main


def main(argv: list[str] | None = None) -> int:
    from espnet_prune.diar.model_file import parse_task_args
    from espnet_prune.tasks.prune_stages import prune, stage_parser

    prune(parse_task_args(stage_parser(__doc__), argv))
    return 0


if __name__ == "__main__":
    run_main(main)
