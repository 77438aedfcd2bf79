"""The ESPnet model of the pruning stage: frozen fine-tuned teacher WavLM, gated student copy.

``loss = distillation(student, teacher) [+ λ1(ŝ − t) + λ2(ŝ − t)²] [+ w · diarization loss]``

* The teacher is frozen (``requires_grad=False``), stays in eval mode whatever the trainer
  asks, and runs under ``no_grad``: it is never updated.
* ŝ = 1 − E[size(student)] / size(teacher), size = parameters (``target: params``) or MACs per
  second (``target: macs``), differentiable in the gate log-alphas.
* t follows :class:`~espnet_prune.prune.schedule.TargetSchedule`, whose position is a buffer and
  so is restored with the gates and λs when ESPnet resumes from ``checkpoint.pth``.
* Hybrid: when a diarization model is given, its frontend WavLM *is* the student and its
  powerset loss is added (the Conformer/head then train with the weights' learning rate).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from espnet2.torch_utils.device_funcs import force_gatherable
from espnet2.train.abs_espnet_model import AbsESPnetModel
from torch import nn

from espnet_prune.errors import ConfigError
from espnet_prune.prune.distill import distillation_loss
from espnet_prune.prune.export import early_stop_score
from espnet_prune.prune.lagrangian import SparsityLagrangian
from espnet_prune.prune.schedule import TargetSchedule

TARGETS = ("params", "macs")


def evenly_spaced_layers(num_layers: int, count: int = 4) -> list[int]:
    """0, L/3, 2L/3, L for 4 points: Base+ 0,4,8,12 and Large 0,8,16,24 (the paper's)."""
    return sorted({round(i * num_layers / (count - 1)) for i in range(count)})


def is_export_process(args) -> bool:
    """After ``Task.main(args)`` returned: whether this process writes a run's exports.

    With an external launcher (torchrun, ``--dist_rank``/``--dist_world_size``, srun) every
    rank returns from ``main`` (rank 0 still saving checkpoints): only rank 0 exports.  With
    ESPnet's own spawning (``--ngpu N --multiprocessing_distributed true``) the ranks were
    children and the parent returns once they are done: the parent of node 0 exports.
    """
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    if getattr(args, "distributed", False) and getattr(args, "multiprocessing_distributed", False):
        from espnet2.train.distributed_utils import get_node_rank

        return (get_node_rank(args.dist_rank, args.dist_launcher) or 0) == 0
    return True


class DistillPruneModel(AbsESPnetModel):
    """The keyword defaults here are the pruning stage's (the task's ``model_conf`` defaults
    are read from this signature); ``distill_layers`` None: 4 evenly spaced hidden states of
    the teacher (:func:`evenly_spaced_layers`)."""

    def __init__(
        self,
        teacher: nn.Module,
        student: nn.Module,
        distill_layers: Sequence[int] | None = None,
        l1_weight: float = 1.0,
        cos_weight: float = 1.0,
        regularizer: bool = True,
        target: str = "params",
        target_sparsity: float = 0.8,
        warmup_steps: int = 0,
        diar_model: nn.Module | None = None,
        diar_weight: float = 1.0,
    ):
        super().__init__()
        if target not in TARGETS:
            raise ConfigError(f"target must be one of {TARGETS}, got {target!r}")
        if teacher is student:
            raise ConfigError("teacher and student must be different modules")
        self.teacher = teacher.requires_grad_(False).eval()
        self.student = student
        if distill_layers is None:
            distill_layers = evenly_spaced_layers(teacher.config.num_layers)
        self.distill_layers = [int(layer) for layer in distill_layers]
        self.l1_weight = float(l1_weight)
        self.cos_weight = float(cos_weight)
        self.target = target
        self.diar_model = diar_model
        self.diar_weight = float(diar_weight)
        if diar_model is not None and diar_model.frontend.wavlm is not student:
            raise ConfigError("hybrid: the diarization model's frontend WavLM must be the student")
        self.use_regularizer = bool(regularizer)
        if self.use_regularizer:
            if not list(student.gate_parameters()):
                raise ConfigError("the regulariser needs a student with pruning gates")
            self.lagrangian = SparsityLagrangian()
            self.schedule = TargetSchedule(target_sparsity, warmup_steps)
        # Reference size: the unpruned teacher (student and teacher start as the same network).
        self.reference_size = float(self._size(teacher))

    # -- sizes ---------------------------------------------------------------------------
    def _size(self, wavlm) -> float:
        return wavlm.num_params() if self.target == "params" else wavlm.macs_per_second()

    def expected_sparsity(self) -> torch.Tensor:
        if self.target == "params":
            expected = self.student.expected_num_params()
        else:
            expected = self.student.expected_macs()
        return 1.0 - expected / self.reference_size

    # -- training plumbing ----------------------------------------------------------------
    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()  # dropout off, whatever the trainer asks
        return self

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters by learning-rate group: weights, gate log-alphas, Lagrange multipliers."""
        log_alphas = list(self.student.gate_parameters()) if self.use_regularizer else []
        weights = list(self.student.main_parameters())
        if self.diar_model is not None:
            in_student = {id(p) for p in self.student.parameters()}
            weights += [p for p in self.diar_model.parameters() if id(p) not in in_student]
        lambdas = list(self.lagrangian.parameters()) if self.use_regularizer else []
        return {"weights": weights, "log_alpha": log_alphas, "lambda": lambdas}

    def forward(
        self,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor | None = None,
        spk_labels: torch.Tensor | None = None,
        spk_labels_lengths: torch.Tensor | None = None,
        **kwargs,
    ):
        with torch.no_grad():
            teacher_hiddens, frame_lengths = self.teacher.extract_features(speech, speech_lengths)
        student_hiddens, _ = self.student.extract_features(speech, speech_lengths)
        distill, stats = distillation_loss(
            student_hiddens,
            teacher_hiddens,
            self.distill_layers,
            frame_lengths,
            self.l1_weight,
            self.cos_weight,
        )
        loss = distill
        stats["distill_loss"] = distill.detach()

        if self.use_regularizer:
            expected = self.expected_sparsity()
            target = self.schedule.current()
            regularizer = self.lagrangian(expected, target)
            loss = loss + regularizer
            stats.update(
                expected_sparsity=expected.detach(),
                target_sparsity=torch.tensor(target),
                # distance to the *final* target: the validation criterion that picks the
                # checkpoint to export (best_model_criterion: [valid, sparsity_gap, min])
                sparsity_gap=(expected.detach() - self.schedule.target).abs(),
                lambda1=self.lagrangian.lambda1.detach().clone(),
                lambda2=self.lagrangian.lambda2.detach().clone(),
                regularizer=regularizer.detach(),
                # the reference's early stopping: distillation loss, after the warm-up only
                early_stop_loss=early_stop_score(distill.detach(), int(self.schedule.step),
                                                 self.schedule.warmup_steps),
            )

        if self.diar_model is not None:
            if spk_labels is None:
                raise ConfigError("hybrid pruning needs spk_labels in the batch")
            diar_loss, _, _ = self.diar_model(
                speech, speech_lengths, spk_labels, spk_labels_lengths
            )
            loss = loss + self.diar_weight * diar_loss
            stats["diar_loss"] = diar_loss.detach()

        stats["loss"] = loss.detach()
        if self.training and self.use_regularizer:
            # the trainer's step log (espnet_prune.tasks.distill_prune.StepLog) reads this
            # step's stats after the forward, and the step as ``schedule.step - 1``
            self.schedule.advance()
        batch_size = speech.new_tensor(speech.shape[0], dtype=torch.long)
        # ESPnet's convention: 1-dim tensors on the loss's device, so that DataParallel
        # (--ngpu N) can gather the replicas' outputs and recursive_average (DDP) can sum them.
        # Every rank computes the same regulariser (gates and λs are in sync), so the
        # batch-size weighted average over ranks keeps it whole.
        return force_gatherable((loss, stats, batch_size), loss.device)

    def collect_feats(self, speech, speech_lengths=None, **kwargs):
        return {"feats": speech, "feats_lengths": speech_lengths}
