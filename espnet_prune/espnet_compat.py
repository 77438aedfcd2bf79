"""Work-arounds for ESPnet 202511 defects this project depends on.

Each fix subclasses/re-implements the smallest ESPnet piece and keeps ESPnet's interface, so it can
be deleted as soon as ESPnet is fixed (``test/test_espnet_compat.py`` checks the fix).  Setting
``ESPNET_PRUNE_DISABLE_COMPAT=1`` makes this module leave ESPnet's original behaviour in place,
which is how the tests are shown to fail without the work-arounds.  A work-around stays only
while the project calls it.

1. ``Trainer.run`` writes ``checkpoint.pth`` in place with ``torch.save``: a run killed during the
   write leaves a truncated file and ``--resume true`` then dies with ``EOFError``.
   → :func:`atomic_checkpoints` (write to a temporary file, then ``os.replace``), used by
   :mod:`espnet_prune.tasks.chunked`.
2. ``Trainer.run`` saves ``checkpoint.pth`` first and ``{epoch}epoch.pth`` (and the ``latest`` /
   ``*.best`` links) after it: a run killed between the two resumes at the next epoch without
   that epoch's model file, and the final averaging then links ``valid.loss.ave.pth`` to a file
   that does not exist (or fails to load it).
   → :func:`complete_checkpointed_epoch`, called on resume by
   :mod:`espnet_prune.tasks.chunked`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import types
from pathlib import Path

import torch

DISABLED = os.environ.get("ESPNET_PRUNE_DISABLE_COMPAT", "") not in ("", "0")


class _TorchWithAtomicSave(types.ModuleType):
    """``torch`` as seen by ESPnet's trainer module, but ``save(obj, path)`` is atomic."""

    def __init__(self):
        super().__init__("torch")

    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def save(obj, f, *args, **kwargs):
        if not isinstance(f, (str, os.PathLike)):
            return torch.save(obj, f, *args, **kwargs)
        atomic_save(obj, f, *args, **kwargs)


def atomic_save(obj, path, *args, **kwargs) -> None:
    """``torch.save`` to a temporary file, then ``os.replace``: a kill never leaves half a file."""
    tmp = f"{os.fspath(path)}.tmp"
    torch.save(obj, tmp, *args, **kwargs)
    os.replace(tmp, path)


@contextlib.contextmanager
def atomic_checkpoints():
    """Within the block, ESPnet's trainer writes its checkpoints atomically."""
    import espnet2.train.trainer as trainer_module

    if DISABLED:
        yield
        return
    original = trainer_module.torch
    trainer_module.torch = _TorchWithAtomicSave()
    try:
        yield
    finally:
        trainer_module.torch = original


def complete_checkpointed_epoch(output_dir: Path, model_state: dict, reporter,
                                best_model_criterion) -> None:
    """On resume, write what the trainer writes right after ``checkpoint.pth`` if it is missing.

    The checkpoint holds the weights of the epoch it ends (``reporter``'s epoch, already
    resumed), so ``{epoch}epoch.pth`` is rewritten from ``model_state`` and the ``latest.pth``
    and ``{phase}.{key}.best.pth`` links the trainer would have made are made."""
    epoch = reporter.get_epoch()
    model_file = Path(output_dir) / f"{epoch}epoch.pth"
    if DISABLED or epoch < 1 or model_file.exists():
        return
    logging.warning("%s is missing (the run stopped right after saving checkpoint.pth); "
                    "writing it from checkpoint.pth", model_file)
    atomic_save(model_state, model_file)
    links = ["latest.pth"]
    for phase, key, mode in best_model_criterion:
        if reporter.has(phase, key) and reporter.get_best_epoch(phase, key, mode) == epoch:
            links.append(f"{phase}.{key}.best.pth")
    for name in links:
        link = model_file.parent / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(model_file.name)
