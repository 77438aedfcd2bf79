"""ESPnet task for the EEND powerset diarization model (teacher / fbank / final fine-tune).

The chunked-data pipeline is :class:`espnet_prune.tasks.chunked.ChunkedDataTask`'s; this task
adds the frontend/encoder choices, the model options and the two learning rates.
"""

from __future__ import annotations

import argparse
import logging

import torch
from espnet2.asr.encoder.abs_encoder import AbsEncoder
from espnet2.asr.frontend.abs_frontend import AbsFrontend
from espnet2.train.class_choices import ClassChoices
from espnet2.utils.get_default_kwargs import get_default_kwargs
from espnet2.utils.nested_dict_action import NestedDictAction
from espnet2.utils.types import float_or_none

from espnet_prune.diar.build import ENCODERS, build_diarization_model
from espnet_prune.diar.frontends import FRONTENDS, frame_geometry
from espnet_prune.diar.model import PowersetDiarizationModel
from espnet_prune.tasks.chunked import ChunkedDataTask

frontend_choices = ClassChoices(
    name="frontend", classes=FRONTENDS, type_check=AbsFrontend, default="fbank"
)
# ClassChoices copies the dict it is given: share the registry itself instead, so that a
# frontend added with register_frontend() is a --frontend choice and has a frame geometry
frontend_choices.classes = FRONTENDS
encoder_choices = ClassChoices(
    name="encoder",
    classes=ENCODERS,
    type_check=AbsEncoder,
    default="conformer",
)


class PowersetDiarizationTask(ChunkedDataTask):
    class_choices_list = [frontend_choices, encoder_choices]

    @classmethod
    def add_model_arguments(cls, group) -> None:
        group.add_argument(
            "--model_conf",
            action=NestedDictAction,
            default=get_default_kwargs(PowersetDiarizationModel),
            help="max_speakers_per_chunk, max_speakers_per_frame",
        )
        group.add_argument(
            "--upstream_lr",
            type=float_or_none,
            default=2e-5,
            help="Learning rate of the pre-trained frontend (WavLM/s3prl); the rest uses "
            "optim_conf.lr. None: one learning rate for all",
        )

    @classmethod
    def add_task_arguments(cls, parser: argparse.ArgumentParser):
        super().add_task_arguments(parser)
        parser.set_defaults(
            best_model_criterion=[("valid", "loss", "min")],
            keep_nbest_models=[5],
        )

    @classmethod
    def build_model(cls, args: argparse.Namespace) -> PowersetDiarizationModel:
        model = build_diarization_model(vars(args))
        if hasattr(model.frontend, "portable_conf"):
            # config.yaml is written after build_model: store what rebuilds the frontend
            # without its init checkpoint, so that the trained model works anywhere
            args.frontend_conf = {**(args.frontend_conf or {}), **model.frontend.portable_conf()}
        return model

    @classmethod
    def build_optimizers(cls, args: argparse.Namespace, model: torch.nn.Module):
        """AdamW (or any ESPnet optimiser) with the pre-trained frontend in its own group."""
        optim_class = cls.optimizer_class(args)
        module = getattr(model, "module", model)
        frontend = getattr(module, "frontend", None)
        upstream_ids = set()
        if args.upstream_lr is not None and hasattr(frontend, "upstream_parameters"):
            upstream_ids = {id(p) for p in frontend.upstream_parameters()}
        rest = [p for p in model.parameters() if p.requires_grad and id(p) not in upstream_ids]
        upstream = [p for p in model.parameters() if p.requires_grad and id(p) in upstream_ids]
        groups = [{"params": rest, "name": "rest"}]
        if upstream:
            groups.append({"params": upstream, "lr": args.upstream_lr, "name": "upstream"})
        logging.info(
            "optimizer groups: rest %d tensors, upstream %d tensors (lr %s)",
            len(rest),
            len(upstream),
            args.upstream_lr,
        )
        return [optim_class(groups, **args.optim_conf)]

    @classmethod
    def frame_geometry(cls, args: argparse.Namespace) -> tuple[int, int]:
        """The configured frontend's (asked from its ``frontend_conf``)."""
        return frame_geometry(args.frontend, args.frontend_conf)
