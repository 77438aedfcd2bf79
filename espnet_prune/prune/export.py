"""What the pruning runs leave behind for the next stages (teacher, masked/pruned student, plot)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch

from espnet_prune.prune.plot import kept_units, plot_kept_units
from espnet_prune.wavlm import save_wavlm

TEACHER_FILE = "wavlm_teacher.pt"
MASKED_FILE = "wavlm_masked.pt"
PRUNED_FILE = "wavlm_pruned.pt"
PLOT_FILE = "gates.png"
SUMMARY_FILE = "prune_summary.json"


def pruned_copy(wavlm):
    """Physically pruned copy (deterministic eval rule), leaving ``wavlm`` untouched."""
    pruned = copy.deepcopy(wavlm).eval()
    pruned.prune()
    return pruned


def pruning_summary(teacher, student) -> dict:
    """Expected sparsity from the gates vs the real sparsity of the pruned network."""
    pruned = pruned_copy(student)
    teacher_params, teacher_macs = teacher.num_params(), teacher.macs_per_second()
    with torch.no_grad():
        expected_params = float(student.expected_num_params())
        expected_macs = float(student.expected_macs())
    return {
        "teacher_params": teacher_params,
        "teacher_macs_per_second": teacher_macs,
        "pruned_params": pruned.num_params(),
        "pruned_macs_per_second": pruned.macs_per_second(),
        "expected_param_sparsity": 1 - expected_params / teacher_params,
        "expected_macs_sparsity": 1 - expected_macs / teacher_macs,
        "param_sparsity": 1 - pruned.num_params() / teacher_params,
        "macs_sparsity": 1 - pruned.macs_per_second() / teacher_macs,
        "kept": kept_units(pruned.config),
        "original": kept_units(teacher.config),
    }


def export_pruning_stage(model, export_dir: str | Path, extra: dict | None = None) -> dict:
    """wavlm_teacher.pt, wavlm_masked.pt, gates.png and prune_summary.json (plus ``extra``)
    from a trained :class:`~espnet_prune.prune.model.DistillPruneModel`."""
    export_dir = Path(export_dir)
    export_dir.mkdir(parents=True, exist_ok=True)
    save_wavlm(model.teacher, export_dir / TEACHER_FILE)
    save_wavlm(model.student, export_dir / MASKED_FILE)
    summary = pruning_summary(model.teacher, model.student)
    summary["target"] = model.target
    summary["target_sparsity"] = model.schedule.target if model.use_regularizer else None
    summary.update(extra or {})
    plot_kept_units(
        summary["kept"],
        summary["original"],
        export_dir / PLOT_FILE,
        title=f"kept units: param sparsity {summary['param_sparsity']:.3f}, "
        f"MACs sparsity {summary['macs_sparsity']:.3f}",
    )
    (export_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def export_student(model, path: str | Path) -> Path:
    """The (already physically pruned) student after post-pruning distillation."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_wavlm(model.student, path)
    return path
