"""ESPnet task of the pruning stage (and of the post-pruning distillation).

The ESPnet trainer runs :class:`~espnet_prune.prune.model.DistillPruneModel`; resuming from
``checkpoint.pth`` restores the student (gates included), the λs, the warm-up position and the
optimiser.  Data come through the chunked-data pipeline the diarization task also uses
(:class:`~espnet_prune.tasks.chunked.ChunkedDataTask`: same chunking, same arguments), so a
pruning run reads the data dirs its teacher was trained on; the speaker labels are used only by
the hybrid option.  ``--unlabelled_data true`` reads the data dirs' ``wav.scp`` alone (no RTTM,
no UEM): distillation of a pre-trained WavLM on unlabelled audio, the prune-before-fine-tune
order (``--teacher_wavlm`` = the pre-trained WavLM).  The trainer (:class:`PruneTrainer`)
writes ``prune_steps.tsv`` from the stats the model returns at each training step.
"""

from __future__ import annotations

import argparse
import copy
import inspect
import logging
import math
from pathlib import Path

import torch
from espnet2.utils.nested_dict_action import NestedDictAction
from espnet2.utils.types import str2bool, str_or_none
from torch import nn

from espnet_prune.diar.frontends import WavLMPrunableFrontend, frame_geometry
from espnet_prune.errors import CheckpointError, ConfigError
from espnet_prune.prune.export import EXPORT_POLICIES
from espnet_prune.prune.model import DistillPruneModel
from espnet_prune.prune.optim import build_optimizer, param_groups
from espnet_prune.tasks.chunked import ChunkedDataTask, ProgressBarTrainer
from espnet_prune.tasks.diar import PowersetDiarizationTask
from espnet_prune.wavlm import WavLM, load_wavlm

# model_conf keys that the task resolves itself (the model's own are its keyword defaults)
TASK_MODEL_CONF = {
    "warmup_epochs": None,  # warm-up length in epochs instead of warmup_steps
    "hybrid": False,  # add the diarization loss; the teacher's diarization model trains too
    # gradient into the student's CNN x 0.1, as in the reference, whose WavLM scales it in its
    # own feature extraction (so also for the student in pruning and post-pruning distillation)
    "cnn_grad_scale": 0.1,
}
DEFAULT_MODEL_CONF = {
    **{name: parameter.default
       for name, parameter in inspect.signature(DistillPruneModel).parameters.items()
       if parameter.default is not inspect.Parameter.empty and name != "diar_model"},
    **TASK_MODEL_CONF,
}
STEP_LOG_FILE = "prune_steps.tsv"
STEP_LOG_COLUMNS = (
    "step",
    "target_sparsity",
    "expected_sparsity",
    "lambda1",
    "lambda2",
    "distill_loss",
    "loss",
)


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

    Read without unpickling and loaded strictly (:mod:`espnet_prune.diar.model_file`); the
    kind of file is checked first: a bare WavLM checkpoint, a model whose frontend is not
    ``wavlm_prunable`` (e.g. fbank) or a model that does not match ``--teacher_config`` is a
    one-line error naming the file."""
    from espnet_prune.diar.model_file import (
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


def is_secondary_replica(module: nn.Module, device: torch.device) -> bool:
    """True in a DataParallel (``--ngpu N``, N > 1) copy of ``module`` on another GPU than
    the first: those copies are thrown away after forward, only the first shares the module's
    buffers (ESPnet's DataParallel uses ``device_ids = 0..N-1``)."""
    return bool(getattr(module, "_is_replica", False)) and device.index not in (None, 0)


class StepLog:
    """``prune_steps.tsv``: per training step the target and expected sparsity, the λs and the
    losses, as the model's forward returned them (a forward hook on the model)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def trim(self, first_step: int) -> None:
        """Before training from ``first_step`` on (after a resume): drop the rows of steps that
        the restored checkpoint has not seen (a killed epoch logged them, and they are about to
        be trained again)."""
        if not self.path.exists():
            return
        lines = self.path.read_text(encoding="utf-8").splitlines(keepends=True)

        def seen(line: str) -> bool:  # complete rows of steps before ``first_step`` only
            step = line.split("\t", 1)[0]
            return line.endswith("\n") and step.isdigit() and int(step) < first_step

        kept = lines[:1] + [line for line in lines[1:] if seen(line)]
        if len(kept) != len(lines):
            self.path.write_text("".join(kept), encoding="utf-8")

    def write(self, step: int, stats: dict[str, torch.Tensor]) -> None:
        new = not self.path.exists()
        values = [float(stats[k]) for k in STEP_LOG_COLUMNS[1:]]
        with self.path.open("a", encoding="utf-8") as f:
            if new:
                f.write("\t".join(STEP_LOG_COLUMNS) + "\n")
            f.write("\t".join([str(step)] + [f"{v:.6g}" for v in values]) + "\n")

    def after_forward(self, module, inputs, output) -> None:
        """Forward hook: ``output`` = (loss, stats, weight) of one training step; the forward
        has advanced the model's target schedule past that step.  DataParallel replicas on
        other GPUs than the first are not logged (they saw a part of the batch)."""
        loss, stats, _ = output
        if not is_secondary_replica(module, loss.device):
            self.write(int(module.schedule.step) - 1, stats)


class PruneTrainer(ProgressBarTrainer):
    """The trainer of the pruning stage: rank 0 logs every training step of a regularised
    model (:class:`StepLog`) in ``output_dir/prune_steps.tsv``."""

    @classmethod
    def train_one_epoch(cls, model, iterator, **kwargs):
        module = getattr(model, "module", model)  # DDP / DataParallel wrap the model
        distributed = kwargs.get("distributed_option")
        rank0 = distributed is None or not distributed.distributed or distributed.dist_rank == 0
        hook = None
        if rank0 and getattr(module, "use_regularizer", False):
            step_log = StepLog(Path(kwargs["options"].output_dir) / STEP_LOG_FILE)
            step_log.trim(int(module.schedule.step))
            hook = module.register_forward_hook(step_log.after_forward)
        try:
            return super().train_one_epoch(model=model, iterator=iterator, **kwargs)
        finally:
            if hook is not None:
                hook.remove()


class DistillPruneTask(ChunkedDataTask):
    """Distillation from the fine-tuned teacher WavLM with an optional L0 sparsity budget."""

    trainer = PruneTrainer

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
            help="Teacher as a WavLM checkpoint instead: the pre-trained WavLM (pruning before "
            "fine-tuning) or the pruning stage's wavlm_teacher.pt (post-pruning distillation)",
        )
        group.add_argument(
            "--unlabelled_data",
            type=str2bool,
            default=False,
            help="Read only the wav.scp of the data dirs (no RTTM, no UEM: chunks of the whole "
            "recordings); the distillation needs no label (not with model_conf.hybrid)",
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
        # --model_conf, gradient clipping and the chunked data options (chunking, sample rate)
        super().add_task_arguments(parser)
        parser.set_defaults(
            keep_nbest_models=[1],
            best_model_criterion=[("valid", "distill_loss", "min")],
        )

    @classmethod
    def add_model_arguments(cls, group) -> None:
        group.add_argument(
            "--model_conf",
            action=NestedDictAction,
            default={},
            help="Options of the pruning model; defaults: "
            + ", ".join(f"{k}={v}" for k, v in DEFAULT_MODEL_CONF.items()),
        )

    @classmethod
    def build_model(cls, args: argparse.Namespace) -> DistillPruneModel:
        conf = model_conf_with_defaults(args.model_conf)
        hybrid = conf.pop("hybrid")
        cnn_grad_scale = float(conf.pop("cnn_grad_scale"))
        diar_model = None
        if hybrid and getattr(args, "unlabelled_data", False):
            raise ConfigError("hybrid pruning needs the speaker labels: not with "
                              "--unlabelled_data true")
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
        warmup_epochs = conf.pop("warmup_epochs")
        if warmup_epochs is not None:
            conf["warmup_steps"] = round(warmup_epochs * cls.steps_per_epoch(args))
            logging.info("target warm-up: %s epochs = %d steps", warmup_epochs,
                         conf["warmup_steps"])
        if conf["regularizer"]:
            student.add_pruning_gates(parse_units(args.pruning_units))
        model = DistillPruneModel(
            teacher,
            student,
            diar_model=diar_model if hybrid else None,
            **conf,
        )
        # config.yaml is written after build_model: record the resolved values there
        args.model_conf = dict(conf, distill_layers=model.distill_layers, hybrid=hybrid,
                               warmup_epochs=None, cnn_grad_scale=cnn_grad_scale)
        return model

    @classmethod
    def build_optimizers(cls, args: argparse.Namespace, model: torch.nn.Module):
        optim_class = cls.optimizer_class(args)
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
        return [build_optimizer(optim_class, groups, **optim_conf)]

    @classmethod
    def steps_per_epoch(cls, args: argparse.Namespace) -> int:
        """Training batches per epoch (``num_iters_per_epoch`` or all chunks / batch size)."""
        if args.num_iters_per_epoch:
            return int(args.num_iters_per_epoch)
        chunks = len(cls.build_chunk_dataset(args, "train"))
        return max(1, math.ceil(chunks / args.batch_size))

    @classmethod
    def uses_labels(cls, args: argparse.Namespace) -> bool:
        return not getattr(args, "unlabelled_data", False)

    @classmethod
    def frame_geometry(cls, args: argparse.Namespace) -> tuple[int, int]:
        """The teacher WavLM's frames (labels are used only by the hybrid loss, whose
        diarization model is the teacher's): asked from the teacher's frontend, as configured
        in ``--teacher_config``, or from the ``--teacher_wavlm`` checkpoint."""
        if getattr(args, "teacher_wavlm", None) is not None:
            return WavLMPrunableFrontend.frame_geometry(path=args.teacher_wavlm)
        if getattr(args, "teacher_config", None) is None:
            raise ConfigError("--teacher_config is required (or give --teacher_wavlm)")
        from espnet_prune.diar.model_file import read_train_config

        teacher_args = read_train_config(args.teacher_config, "--teacher_config")
        return frame_geometry(teacher_args.get("frontend"), teacher_args.get("frontend_conf"))
