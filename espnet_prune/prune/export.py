"""What the pruning runs leave behind for the next stages (teacher, masked/pruned student, plot)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch

from espnet_prune.errors import CheckpointError
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
    from espnet_prune.utils.datadir import write_text

    write_text(export_dir / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
    return summary


def export_student(model, path: str | Path) -> Path:
    """The (already physically pruned) student after post-pruning distillation."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_wavlm(model.student, path)
    return path


# ------------------------------------------------------------------ which checkpoint is exported
# ``auto``: the CLI's historical default (diar_prune: ``closest`` when ``[valid, sparsity_gap,
# min]`` is a best-model criterion, else ``latest``; diar_distill: ``best``).
EXPORT_POLICIES = ("auto", "latest", "closest", "best", "post_peak_average")
CLOSEST_FILE = "valid.sparsity_gap.best.pth"
# Pre-warm-up value of the early-stopping score (see :func:`early_stop_score`).
WARMUP_SCORE = 1000.0


def early_stop_score(distill_loss: torch.Tensor, step: int, warmup_steps: int) -> torch.Tensor:
    """The reference's early-stopping score of the pruning stage: the validation distillation
    loss, counted only once an epoch has ended after the target warm-up (its trainer starts
    the patience count at epoch ``warmup_epochs + 1``).

    Before that the score is ``WARMUP_SCORE·(2 − step/warmup_steps)``: larger than any
    distillation loss (≥ −1 for L1 − cosine) and decreasing, so ESPnet's
    ``check_early_stopping`` never takes a warm-up epoch as the best one and cannot run out of
    patience during the warm-up.
    """
    if step > warmup_steps:
        return distill_loss
    return distill_loss.new_tensor(WARMUP_SCORE * (2.0 - step / max(warmup_steps, 1)))


def validation_history(output_dir: str | Path, key: str = "loss") -> dict[int, float]:
    """Per-epoch ``valid.<key>`` of an ESPnet run, from the reporter state that ESPnet keeps in
    ``checkpoint.pth`` (read with ``weights_only``; numpy scalars and the reporter's
    ``timedelta`` timings are the only extra types allowed)."""
    from espnet_prune.diar.model_file import read_run_state
    from espnet_prune.errors import CheckpointError

    path = Path(output_dir) / "checkpoint.pth"
    if not path.is_file():
        raise CheckpointError(f"{path}: not found (did the training run finish?)")
    try:
        stats = read_run_state(path)["reporter"]["stats"]
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: cannot read ESPnet's reporter state ({exc})") from None
    history = {int(epoch): float(values["valid"][key]) for epoch, values in stats.items()
               if key in values.get("valid", {})}
    if not history:
        raise CheckpointError(f"{path}: no per-epoch valid.{key} (criterion {key!r} unknown?)")
    return dict(sorted(history.items()))


def post_peak_epochs(history: dict[int, float], nbest: int = 5) -> list[int]:
    """The reference's choice (DiariZen ``apply_pruning.get_checkpoints``): from the epoch with
    the highest validation loss (the first one on ties) onwards, the ``nbest`` epochs with the
    lowest loss, best first (earlier first on ties).  Pruning makes the loss rise during the
    warm-up; the epochs after its peak are the ones at the final sparsity."""
    if nbest < 1 or not history:
        raise ValueError("need nbest >= 1 and a non-empty history")
    epochs = sorted(history)
    peak = max(epochs, key=lambda e: history[e])
    after = [e for e in epochs if e >= peak]
    return sorted(after, key=lambda e: history[e])[:nbest]


def average_epoch_files(output_dir: str | Path, epochs: list[int], name: str) -> Path:
    """Average the model files ``{e}epoch.pth`` of ``epochs`` (ESPnet's per-epoch state dicts)
    into ``output_dir/name``: floating-point tensors are averaged (the gate log-alphas too);
    tensors equal in every file (the frozen teacher) are kept bit-exact; other tensors (integer
    buffers such as the warm-up step) come from the first (best) epoch.

    Like ESPnet's ``average_nbest_models``, which cannot be reused as is: it picks the n best
    of a criterion over *all* epochs, sums integer buffers and rounds frozen tensors.
    """
    from espnet_prune.errors import CheckpointError
    from espnet_prune.utils.checkpoint import read_checkpoint

    output_dir = Path(output_dir)
    files = [output_dir / f"{e}epoch.pth" for e in epochs]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise CheckpointError(
            f"{', '.join(missing)}: not found; the averaged export needs every epoch's model "
            "file (set keep_nbest_models above max_epoch so that ESPnet deletes none)")
    first = read_checkpoint(files[0])
    total = {k: v.double() for k, v in first.items() if v.is_floating_point()}
    frozen = {k: True for k in total}
    for path in files[1:]:
        state = read_checkpoint(path)
        if set(state) != set(first):
            raise CheckpointError(f"{path}: keys differ from {files[0]}")
        for k in total:
            frozen[k] = frozen[k] and torch.equal(state[k], first[k])
            total[k] += state[k].double()
    averaged = {}
    for k, v in first.items():
        if k in total and not frozen[k]:
            averaged[k] = (total[k] / len(files)).to(v.dtype)
        else:
            averaged[k] = v
    from espnet_prune.utils.io import atomic_torch_save

    out = output_dir / name
    atomic_torch_save(averaged, out)  # disk full: one line naming it, no truncated file
    return out


def select_export_checkpoint(output_dir: str | Path, policy: str, nbest: int = 5,
                             criterion: str = "loss") -> tuple[str, dict]:
    """The model file (name inside ``output_dir``) whose student is exported, and what was
    chosen (``{"export_policy": ..., "averaged_epochs": [...], ...}``).

    * ``latest``: ``latest.pth``, the last epoch.
    * ``closest``: ``valid.sparsity_gap.best.pth``, the epoch whose expected sparsity is closest
      to the target (needs ``best_model_criterion [valid, sparsity_gap, min]``).
    * ``best``: ``valid.<criterion>.best.pth``.
    * ``post_peak_average``: the reference's rule, :func:`post_peak_epochs` on
      ``valid.<criterion>``, averaged by :func:`average_epoch_files` into
      ``valid.<criterion>.post_peak_ave_<n>best.pth``.

    A missing ``closest``/``best`` link falls back to ``latest.pth`` with a warning.
    """
    import logging

    from espnet_prune.errors import ConfigError

    output_dir = Path(output_dir)
    info: dict = {"export_policy": policy}
    if policy == "latest":
        return "latest.pth", info
    if policy in ("closest", "best"):
        name = CLOSEST_FILE if policy == "closest" else f"valid.{criterion}.best.pth"
        if (output_dir / name).exists():
            return name, info
        logging.warning("%s not found; exporting latest.pth", output_dir / name)
        return "latest.pth", info
    if policy == "post_peak_average":
        history = validation_history(output_dir, criterion)
        epochs = post_peak_epochs(history, nbest)
        name = f"valid.{criterion}.post_peak_ave_{len(epochs)}best.pth"
        average_epoch_files(output_dir, epochs, name)
        info.update(averaged_epochs=epochs, peak_epoch=max(history, key=lambda e: (
            history[e], -e)), validation_criterion=f"valid.{criterion}",
            validation_values={e: history[e] for e in epochs})
        return name, info
    raise ConfigError(f"export_policy must be one of {EXPORT_POLICIES}, got {policy!r}")


def resolve_export_policy(policy: str, best_model_criterion, keep_nbest_models, max_epoch: int,
                          auto: str) -> str:
    """``policy`` with ``auto`` replaced (diar_prune: ``closest`` if ``[valid, sparsity_gap,
    min]`` is a criterion, else ``latest``; the caller passes its own ``auto``), checked before
    training so that a run does not end without the files its export needs."""
    from espnet_prune.errors import ConfigError

    criteria = [tuple(c) for c in best_model_criterion or []]
    if policy == "auto":
        policy = auto
        if auto == "closest" and ("valid", "sparsity_gap", "min") not in criteria:
            policy = "latest"
    if policy not in EXPORT_POLICIES[1:]:
        raise ConfigError(f"export_policy must be one of {EXPORT_POLICIES}, got {policy!r}")
    if policy == "closest" and ("valid", "sparsity_gap", "min") not in criteria:
        raise ConfigError("export_policy closest needs best_model_criterion "
                          "[valid, sparsity_gap, min]")
    if policy == "post_peak_average":
        keep = keep_nbest_models if isinstance(keep_nbest_models, int) else max(
            keep_nbest_models or [1])
        if keep < max_epoch:
            raise ConfigError(
                f"export_policy post_peak_average averages epochs chosen after training, so "
                f"every epoch's model file must stay: set keep_nbest_models above max_epoch "
                f"({max_epoch}), e.g. {max_epoch + 1} (then ESPnet itself averages none)")
    return policy


def export_policy(args, auto: str = "closest") -> str:
    """``--export_policy`` resolved and checked (run before training too, so that a config the
    export cannot serve fails in seconds)."""
    return resolve_export_policy(args.export_policy, args.best_model_criterion,
                                 args.keep_nbest_models, args.max_epoch, auto=auto)


def export_checkpoint(args, output_dir: Path, auto: str = "closest") -> tuple[str, dict]:
    """The checkpoint whose student is exported and what was chosen, by ``--export_policy``
    (:func:`select_export_checkpoint`; ``auto`` as in :func:`resolve_export_policy`): the paper
    configs average
    the 5 best epochs after the validation-loss peak (the reference's rule); ``auto`` keeps the
    epoch whose expected sparsity is closest to the target when ``[valid, sparsity_gap, min]``
    is a criterion (short runs: the Lagrangian oscillates around the target and the last epoch
    can be past it), else the last epoch."""
    return select_export_checkpoint(output_dir, export_policy(args, auto), args.export_nbest,
                                    args.export_criterion)


def trained_model(task, output_dir: Path, checkpoint: str):
    """Rebuild the run's model from its config.yaml and load ``checkpoint`` (a file name),
    without unpickling and strictly (:func:`espnet_prune.diar.model_file.load_trained_model`)."""
    from espnet_prune.diar.model_file import load_trained_model

    model_file = output_dir / checkpoint
    if not model_file.exists():
        raise CheckpointError(f"{model_file}: not found (did the training run finish?)")
    return load_trained_model(task, output_dir / "config.yaml", model_file, "cpu",
                              config_option="run config", model_option="run model")
