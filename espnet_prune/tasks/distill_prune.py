"""ESPnet task of the pruning stage (and of the post-pruning distillation).

The ESPnet trainer runs :class:`~espnet_prune.prune.model.DistillPruneModel`; resuming from
``checkpoint.pth`` restores the student (gates included), the λs, the warm-up position and the
optimiser.  Data come through exactly the diarization task's pipeline (same chunking, same
arguments), so a pruning run reads the data dirs its teacher was trained on; the speaker labels
are used only by the hybrid option.
"""

from __future__ import annotations

import argparse
import copy
import logging
import math
from pathlib import Path

import torch
from espnet2.tasks.abs_task import optim_classes
from espnet2.utils.types import str_or_none

from espnet_prune.diar.frontends import frame_geometry
from espnet_prune.errors import CheckpointError, ConfigError
from espnet_prune.prune.export import EXPORT_POLICIES
from espnet_prune.prune.model import DistillPruneModel
from espnet_prune.prune.optim import build_optimizer, param_groups, with_percentile_clipping
from espnet_prune.tasks.diar import PowersetDiarizationTask
from espnet_prune.wavlm import WavLM, load_wavlm

DEFAULT_MODEL_CONF = {
    "distill_layers": None,
    "l1_weight": 1.0,
    "cos_weight": 1.0,
    "regularizer": True,
    "target": "params",
    "target_sparsity": 0.8,
    "warmup_steps": 0,
    "warmup_epochs": None,
    "hybrid": False,
    "diar_weight": 1.0,
    # gradient into the student's CNN x 0.1, as in the reference, whose WavLM scales it in its
    # own feature extraction (so also for the student in pruning and post-pruning distillation)
    "cnn_grad_scale": 0.1,
}
STEP_LOG_FILE = "prune_steps.tsv"


def model_conf_with_defaults(model_conf: dict | None) -> dict:
    conf = dict(DEFAULT_MODEL_CONF)
    unknown = set(model_conf or {}) - set(conf)
    if unknown:
        raise ConfigError(
            f"unknown model_conf keys {sorted(unknown)}; known: {sorted(DEFAULT_MODEL_CONF)}"
        )
    conf.update(model_conf or {})
    if isinstance(conf["distill_layers"], str):
        conf["distill_layers"] = [int(x) for x in conf["distill_layers"].split(",")]
    return conf


def parse_units(units) -> tuple[str, ...]:
    if isinstance(units, str):
        units = [u.strip() for u in units.split(",") if u.strip()]
    return tuple(units)


def load_diarization_teacher(config_file: str | None, model_file: str):
    """The fine-tuned diarization model whose WavLM becomes the teacher.

    Read without unpickling and loaded strictly (:mod:`espnet_prune.tasks.model_file`); the
    kind of file is checked first: a bare WavLM checkpoint, a model whose frontend is not
    ``wavlm_prunable`` (e.g. fbank) or a model that does not match ``--teacher_config`` is a
    one-line error naming the file."""
    from espnet_prune.tasks.model_file import (
        build_model,
        load_state,
        read_model_state,
        read_train_config,
    )

    for name, path in (("--teacher", model_file), ("--teacher_config", config_file)):
        if path is None:
            raise ConfigError(f"{name} is required (or give --teacher_wavlm)")
        if not Path(path).is_file():
            raise CheckpointError(f"{path}: {name} file not found")
    conf = read_train_config(config_file, "--teacher_config")
    if conf.get("frontend") != "wavlm_prunable":
        raise CheckpointError(
            f"{config_file}: the teacher's frontend is {conf.get('frontend')!r}; --teacher must "
            "be a WavLM diarization model (trained with frontend: wavlm_prunable)")
    state = read_model_state(model_file, "--teacher file")
    if not any(key.startswith("frontend.wavlm.") for key in state):
        raise CheckpointError(
            f"{model_file}: --teacher has no 'frontend.wavlm.*' weights: not a WavLM "
            "diarization model (an fbank model?); give the diar_train output of the WavLM "
            "teacher")
    diar_model = build_model(PowersetDiarizationTask, config_file, "cpu", "--teacher_config")
    load_state(diar_model, state, model_file)
    wavlm = getattr(getattr(diar_model, "frontend", None), "wavlm", None)
    if wavlm is None:
        raise CheckpointError(
            f"{model_file}: the teacher's frontend has no WavLM (train it with "
            "frontend: wavlm_prunable)"
        )
    return diar_model


def fresh_copy(wavlm: WavLM) -> WavLM:
    """Same weights and config (dropout included), but none of the hooks a diarization
    frontend put on its WavLM: the distillation student gets its CNN gradient scaling from
    ``model_conf.cnn_grad_scale`` instead (``WavLM.cnn_grad_scale``)."""
    copied = WavLM(copy.deepcopy(wavlm.config))
    copied.load_state_dict(wavlm.state_dict())
    return copied


def evenly_spaced_layers(num_layers: int, count: int = 4) -> list[int]:
    """0, L/3, 2L/3, L for 4 points: Base+ 0,4,8,12 and Large 0,8,16,24 (the paper's)."""
    return sorted({round(i * num_layers / (count - 1)) for i in range(count)})


class DistillPruneTask(PowersetDiarizationTask):
    """Distillation from the fine-tuned teacher WavLM with an optional L0 sparsity budget."""

    num_optimizers = 1
    class_choices_list = []  # no frontend/encoder choices: the model is fixed

    @classmethod
    def add_task_arguments(cls, parser: argparse.ArgumentParser):
        group = parser.add_argument_group(description="Pruning related")
        group.add_argument(
            "--teacher",
            type=str_or_none,
            default=None,
            help="Fine-tuned diarization model (e.g. exp/diar_*/valid.loss.ave.pth); its WavLM "
            "is the teacher and, copied with gates, the student",
        )
        group.add_argument("--teacher_config", type=str_or_none, default=None,
                           help="config.yaml of --teacher")
        group.add_argument(
            "--teacher_wavlm",
            type=str_or_none,
            default=None,
            help="Teacher as a WavLM checkpoint instead (post-pruning distillation)",
        )
        group.add_argument(
            "--student_wavlm",
            type=str_or_none,
            default=None,
            help="Start the student from this WavLM checkpoint (e.g. the physically pruned "
            "one) instead of a copy of the teacher",
        )
        group.add_argument("--pruning_units", type=str, default="conv,head,interm",
                           help="Comma-separated units to gate (conv,head,interm,attlayer,"
                           "ffnlayer)")
        group.add_argument("--log_alpha_lr", type=float, default=2e-2,
                           help="Learning rate of the gate log-alphas")
        group.add_argument("--lambda_lr", type=float, default=2e-2,
                           help="Learning rate of the Lagrange multipliers (gradient ascent)")
        group.add_argument("--export_dir", type=str_or_none, default=None,
                           help="Where the exported WavLM files go (default: --output_dir)")
        group.add_argument(
            "--export_policy", type=str, default="auto", choices=EXPORT_POLICIES,
            help="Which checkpoint's student is exported at the end: latest; closest (epoch "
            "whose expected sparsity is nearest the target, needs best_model_criterion "
            "[valid, sparsity_gap, min]); best (valid.<export_criterion>.best.pth); "
            "post_peak_average (the reference: average of the --export_nbest epochs with the "
            "lowest valid.<export_criterion> from its peak on, gates included; needs "
            "keep_nbest_models > max_epoch); auto: diar_prune closest if that criterion is "
            "set else latest, diar_distill best")
        group.add_argument("--export_nbest", type=int, default=5,
                           help="Epochs averaged by --export_policy post_peak_average")
        group.add_argument("--export_criterion", type=str, default="loss",
                           help="Validation statistic of --export_policy best / "
                           "post_peak_average (the reference: the total loss)")
        # the diarization task's data options (chunking, sample rate) and its --model_conf,
        # whose defaults are replaced by the pruning model's
        super().add_task_arguments(parser)
        parser.set_defaults(
            model_conf={},
            keep_nbest_models=[1],
            best_model_criterion=[("valid", "distill_loss", "min")],
        )

    @classmethod
    def build_model(cls, args: argparse.Namespace) -> DistillPruneModel:
        conf = model_conf_with_defaults(args.model_conf)
        hybrid = conf.pop("hybrid")
        cnn_grad_scale = float(conf.pop("cnn_grad_scale"))
        diar_model = None
        if args.teacher_wavlm is not None:
            if hybrid:
                raise ConfigError("hybrid pruning needs --teacher (a diarization model)")
            teacher = load_wavlm(args.teacher_wavlm)
        else:
            diar_model = load_diarization_teacher(args.teacher_config, args.teacher)
            teacher = fresh_copy(diar_model.frontend.wavlm)
        if args.student_wavlm is not None:
            if hybrid:
                raise ConfigError("hybrid pruning starts the student from the teacher")
            student = load_wavlm(args.student_wavlm)
        elif hybrid:
            student = diar_model.frontend.wavlm  # the full model trains around the student
        else:
            student = fresh_copy(teacher)
        student.train()
        if hybrid:
            # the frontend's own hook already scales every gradient into the student's CNN
            logging.info("hybrid: the student's CNN gradient scale is the frontend's "
                         "cnn_grad_scale; model_conf.cnn_grad_scale is not applied")
        else:
            student.cnn_grad_scale = cnn_grad_scale
        if conf["distill_layers"] is None:
            conf["distill_layers"] = evenly_spaced_layers(teacher.config.num_layers)
        warmup_epochs = conf.pop("warmup_epochs")
        if warmup_epochs is not None:
            conf["warmup_steps"] = round(warmup_epochs * cls.steps_per_epoch(args))
            logging.info("target warm-up: %s epochs = %d steps", warmup_epochs,
                         conf["warmup_steps"])
        # config.yaml is written after build_model: record the resolved values there
        args.model_conf = dict(conf, hybrid=hybrid, warmup_epochs=None,
                               cnn_grad_scale=cnn_grad_scale)
        if conf["regularizer"]:
            student.add_pruning_gates(parse_units(args.pruning_units))
        output_dir = getattr(args, "output_dir", None)
        step_log = Path(output_dir) / STEP_LOG_FILE if output_dir else None
        return DistillPruneModel(
            teacher,
            student,
            diar_model=diar_model if hybrid else None,
            step_log=step_log,
            **conf,
        )

    @classmethod
    def build_optimizers(cls, args: argparse.Namespace, model: torch.nn.Module):
        optim_class = optim_classes.get(args.optim)
        if optim_class is None:
            raise ConfigError(f"optim must be one of {list(optim_classes)}: {args.optim}")
        optim_conf = dict(args.optim_conf)
        groups = param_groups(
            model,
            model.parameter_groups(),
            {
                "weights": optim_conf.get("lr", 2e-4),
                "log_alpha": args.log_alpha_lr,
                "lambda": args.lambda_lr,
            },
            {"weights": optim_conf.get("weight_decay", 0.0)},
        )
        if getattr(args, "grad_clip_percentile", None):  # the reference's adaptive clipping
            optim_class = with_percentile_clipping(optim_class, args.grad_clip_percentile,
                                                   args.grad_clip_history)
        return [build_optimizer(optim_class, groups, **optim_conf)]

    @classmethod
    def steps_per_epoch(cls, args: argparse.Namespace) -> int:
        """Training batches per epoch (``num_iters_per_epoch`` or all chunks / batch size)."""
        if args.num_iters_per_epoch:
            return int(args.num_iters_per_epoch)
        chunks = len(cls.build_chunk_dataset(args, "train"))
        return max(1, math.ceil(chunks / args.batch_size))

    @classmethod
    def frame_geometry(cls, args: argparse.Namespace) -> tuple[int, int]:
        """The teacher frontend's frames (labels are used only by the hybrid loss)."""
        if getattr(args, "teacher_config", None) and Path(args.teacher_config).is_file():
            from espnet_prune.tasks.model_file import read_train_config

            teacher_args = read_train_config(args.teacher_config, "--teacher_config")
            if "frontend" in teacher_args:
                return frame_geometry(
                    teacher_args["frontend"], teacher_args.get("frontend_conf") or {}
                )
        return 320, 400  # WavLM
