"""What the ESPnet tasks of this project share: training on fixed chunks of whole recordings.

ESPnet's sequence iterators expect one utterance per scp line and shape files; diarization
trains on fixed chunks of whole recordings instead.  :class:`ChunkedDataTask` therefore builds
its own dataset of chunks (:class:`espnet_prune.diar.data.DiarizationChunkDataset`) from the
data dir holding the ``speech`` scp and hands it to ESPnet's ``SequenceIterFactory``, so the
trainer's epoch seeding, resume, DDP sharding, keep-n-best and model averaging are untouched.
ESPnet's own RTTM loader and label aggregation are not used.  The diarization task and the
pruning task both inherit it; each adds its own model options and states the frame geometry
its labels are computed at.
"""

from __future__ import annotations

import argparse
import logging
import sys
import types
from pathlib import Path

import numpy
import torch
from espnet2.iterators.sequence_iter_factory import SequenceIterFactory
from espnet2.samplers.abs_sampler import AbsSampler
from espnet2.tasks.abs_task import AbsTask, optim_classes
from espnet2.train.collate_fn import CommonCollateFn
from espnet2.train.trainer import Trainer
from espnet2.utils.types import float_or_none, str2bool

from espnet_prune.diar.data import DiarizationChunkDataset, load_data_dir
from espnet_prune.errors import ConfigError
from espnet_prune.prune.optim import with_percentile_clipping


class ProgressBarTrainer(Trainer):
    """ESPnet's trainer with a tqdm bar over the training batches of each epoch."""

    progress_bar: bool = True
    best_model_criterion: list = []

    @classmethod
    def build_options(cls, args: argparse.Namespace):
        cls.progress_bar = bool(getattr(args, "progress_bar", True))
        cls.best_model_criterion = list(getattr(args, "best_model_criterion", []) or [])
        return super().build_options(args)

    @classmethod
    def run(cls, *args, **kwargs):
        from espnet_prune.espnet_compat import atomic_checkpoints

        with atomic_checkpoints():  # a kill while saving must not break --resume
            return super().run(*args, **kwargs)

    @classmethod
    def resume(cls, checkpoint, model, reporter, *args, **kwargs):
        """ESPnet's resume, with ``checkpoint.pth`` read by
        :func:`espnet_prune.diar.model_file.read_run_state` (``weights_only=True``) instead
        of ESPnet's full unpickle: a planted resume file cannot run code.  Then the epoch
        the checkpoint ends is completed
        (:func:`espnet_prune.espnet_compat.complete_checkpointed_epoch`)."""
        import espnet2.train.trainer as trainer_module

        from espnet_prune.diar.model_file import read_run_state

        loaded = {}

        def load(path, *a, **k):
            loaded["state"] = read_run_state(path)
            return loaded["state"]

        # the trainer module's ``torch``, with only ``load`` replaced (torch itself untouched)
        seen_torch = trainer_module.torch
        with_safe_load = types.ModuleType("torch")
        with_safe_load.__getattr__ = lambda name: getattr(seen_torch, name)
        with_safe_load.load = load
        trainer_module.torch = with_safe_load
        try:
            Trainer.resume(checkpoint, model, reporter, *args, **kwargs)
        finally:
            trainer_module.torch = seen_torch
        if not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0:
            from espnet_prune.espnet_compat import complete_checkpointed_epoch

            complete_checkpointed_epoch(Path(checkpoint).parent, loaded["state"]["model"],
                                        reporter, cls.best_model_criterion)

    @classmethod
    def train_one_epoch(cls, model, iterator, **kwargs):
        distributed = kwargs.get("distributed_option")
        rank0 = distributed is None or not distributed.distributed or distributed.dist_rank == 0
        if cls.progress_bar and rank0:
            from tqdm import tqdm

            interactive = sys.stderr.isatty()
            iterator = tqdm(
                iterator,
                desc="train",
                unit="batch",
                dynamic_ncols=True,
                mininterval=0.5 if interactive else 30.0,
                leave=False,
            )
        return super().train_one_epoch(model=model, iterator=iterator, **kwargs)


class ChunkBatchSampler(AbsSampler):
    """Batches of chunk keys; for training a new permutation of all chunks per epoch seed.

    With DDP every rank draws the same batches and keeps its share (``batch[rank::world]``),
    so ``batch_size`` is the total over GPUs, as in ESPnet. ``drop_last``: a last batch
    smaller than ``batch_size`` is left out (the reference's data loaders, ``drop_last =
    true``), unless it is the only one.
    """

    def __init__(self, keys, batch_size: int, shuffle: bool, rank: int = 0, world_size: int = 1,
                 drop_last: bool = False):
        if len(keys) < world_size:
            raise ConfigError(f"{len(keys)} chunks cannot be shared by {world_size} GPUs")
        self.keys = list(keys)
        self.batch_size = max(batch_size, world_size)
        self.shuffle = shuffle
        self.rank, self.world_size = rank, world_size
        self.drop_last = drop_last

    def generate(self, seed) -> list[list[str]]:
        keys = list(self.keys)
        if self.shuffle:
            numpy.random.RandomState(seed).shuffle(keys)
        size = self.batch_size
        batches = [keys[i : i + size] for i in range(0, len(keys), size)]
        if self.drop_last and len(batches) > 1 and len(batches[-1]) < size:
            batches.pop()
        if len(batches) > 1 and len(batches[-1]) < self.world_size:
            tail = batches.pop()
            batches[-1] = batches[-1] + tail
        return [batch[self.rank :: self.world_size] for batch in batches]

    def __len__(self) -> int:
        return len(self.generate(0))

    def __iter__(self):
        return iter(self.generate(0))


def data_dir_of(data_path_and_name_and_type, what: str) -> Path:
    """The data dir holding the ``speech`` entry (``wav.scp`` or the dir itself)."""
    entries = [tuple(e) for e in data_path_and_name_and_type or []]
    speech = [path for path, name, _ in entries if name == "speech"]
    if len(speech) != 1:
        raise ConfigError(
            f"--{what}_data_path_and_name_and_type needs exactly one entry named 'speech' "
            f"(e.g. data/train/wav.scp,speech,sound), got {entries}"
        )
    path = Path(speech[0])
    return path if path.is_dir() else path.parent


class ChunkedDataTask(AbsTask):
    """An ESPnet task whose batches are chunks of a data dir (``speech`` + ``spk_labels``).

    Subclasses add their model options (:meth:`add_model_arguments`), build the model and its
    optimiser, and state the frame geometry the labels are computed at (:meth:`frame_geometry`).
    """

    num_optimizers: int = 1
    class_choices_list = []
    trainer = ProgressBarTrainer

    @classmethod
    def add_model_arguments(cls, group) -> None:
        """The subclass's options of the model (``--model_conf`` ...)."""

    @classmethod
    def add_task_arguments(cls, parser: argparse.ArgumentParser):
        group = parser.add_argument_group(description="Task related")
        cls.add_model_arguments(group)
        group.add_argument(
            "--grad_clip_percentile", type=float_or_none, default=None,
            help="Clip each update's gradient norm at this percentile of the last "
            "--grad_clip_history norms (the reference: 90 of 1000; "
            "espnet_prune.prune.optim.with_percentile_clipping); with grad_clip .inf")
        group.add_argument("--grad_clip_history", type=int, default=1000,
                           help="Gradient norms kept for --grad_clip_percentile")
        for class_choices in cls.class_choices_list:
            # --frontend, --frontend_conf, --encoder, --encoder_conf
            class_choices.add_arguments(group)
        group = parser.add_argument_group(description="Diarization data")
        group.add_argument(
            "--sample_rate", type=int, default=16000, help="Sample rate of every recording"
        )
        group.add_argument("--chunk_size", type=float, default=8.0, help="Chunk length (s)")
        group.add_argument(
            "--drop_last", type=str2bool, default=False,
            help="Leave out a last training or validation batch smaller than its batch size "
            "(the reference's data loaders do)")
        group.add_argument(
            "--chunk_shift", type=float, default=6.0, help="Shift between training chunks (s)"
        )
        group.add_argument(
            "--valid_chunk_shift",
            type=float_or_none,
            default=None,
            help="Shift between validation chunks (s); None: chunk_size",
        )
        group.add_argument(
            "--progress_bar", type=str2bool, default=True, help="tqdm bar over training batches"
        )
        # the data dirs are given through the 'speech' entry; RTTM/UEM are read from beside it
        parser.set_defaults(
            num_att_plot=0,
            use_tensorboard=False,  # tensorboard is not part of the environment
        )

    @classmethod
    def optimizer_class(cls, args: argparse.Namespace):
        """``--optim``'s class, wrapped for ``--grad_clip_percentile`` when it is set."""
        optim_class = optim_classes.get(args.optim)
        if optim_class is None:
            raise ConfigError(f"--optim must be one of {list(optim_classes)}: {args.optim}")
        if getattr(args, "grad_clip_percentile", None):  # the reference's adaptive clipping
            optim_class = with_percentile_clipping(optim_class, args.grad_clip_percentile,
                                                   args.grad_clip_history)
        return optim_class

    @classmethod
    def build_collate_fn(cls, args: argparse.Namespace, train: bool):
        return CommonCollateFn(float_pad_value=0.0, int_pad_value=-1)

    @classmethod
    def build_preprocess_fn(cls, args: argparse.Namespace, train: bool):
        return None

    @classmethod
    def required_data_names(cls, train: bool = True, inference: bool = False) -> tuple[str, ...]:
        return ("speech",) if inference else ("speech", "spk_labels")

    @classmethod
    def optional_data_names(cls, train: bool = True, inference: bool = False) -> tuple[str, ...]:
        return ()

    @classmethod
    def frame_geometry(cls, args: argparse.Namespace) -> tuple[int, int]:
        """(frame_shift, frame_length) in samples of the model's frames, for the labels."""
        raise NotImplementedError

    @classmethod
    def uses_labels(cls, args: argparse.Namespace) -> bool:
        """Whether the data dirs are read with their RTTM/UEM (False: ``wav.scp`` only)."""
        return True

    @classmethod
    def build_chunk_dataset(cls, args: argparse.Namespace, mode: str) -> DiarizationChunkDataset:
        """Chunks of the train or valid data dir at the model's frame rate."""
        train = mode == "train"
        triples = (
            args.train_data_path_and_name_and_type
            if train
            else args.valid_data_path_and_name_and_type
        )
        data_dir = data_dir_of(triples, "train" if train else "valid")
        shift = args.chunk_shift if train else (args.valid_chunk_shift or args.chunk_size)
        frame_shift, frame_length = cls.frame_geometry(args)
        labels = cls.uses_labels(args)
        return DiarizationChunkDataset(
            load_data_dir(data_dir, args.sample_rate, labels),
            chunk_size=args.chunk_size,
            chunk_shift=shift,
            frame_shift=frame_shift,
            frame_length=frame_length,
            sample_rate=args.sample_rate,
            labels=labels,
        )

    @classmethod
    def validate_data(cls, args: argparse.Namespace) -> None:
        """Read and check the train/valid data dirs now (fails before any model is built)."""
        for what in ("train", "valid"):
            triples = getattr(args, f"{what}_data_path_and_name_and_type")
            load_data_dir(data_dir_of(triples, what), args.sample_rate, cls.uses_labels(args))

    @classmethod
    def build_iter_factory(
        cls,
        args: argparse.Namespace,
        distributed_option,
        mode: str,
        kwargs: dict | None = None,
    ):
        if mode not in ("train", "valid"):
            raise ConfigError(f"{cls.__name__} has no {mode!r} iterator (set num_att_plot 0)")
        train = mode == "train"
        dataset = cls.build_chunk_dataset(args, mode)
        batch_size = args.batch_size if train else (args.valid_batch_size or args.batch_size)
        rank, world_size = 0, 1
        if distributed_option.distributed:
            world_size = torch.distributed.get_world_size()
            rank = torch.distributed.get_rank()
        sampler = ChunkBatchSampler(dataset.keys, batch_size, train, rank, world_size,
                                    drop_last=getattr(args, "drop_last", False))
        logging.info("[%s] %s, %d batches of %d", mode, dataset, len(sampler), batch_size)
        return SequenceIterFactory(
            dataset=dataset,
            seed=args.seed,
            num_iters_per_epoch=args.num_iters_per_epoch if train else None,
            batches=sampler,
            shuffle=train,
            num_workers=args.num_workers,
            collate_fn=cls.build_collate_fn(args, train),
            pin_memory=args.ngpu > 0,
        )
