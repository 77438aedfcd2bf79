"""Work-arounds for ESPnet 202511 defects this project depends on.

Each fix subclasses/re-implements the smallest ESPnet piece and keeps ESPnet's interface, so it can
be deleted as soon as ESPnet is fixed (``test/test_espnet_compat.py`` checks the fix).  Setting
``ESPNET_PRUNE_DISABLE_COMPAT=1`` makes this module leave ESPnet's original behaviour in place,
which is how the tests are shown to fail without the work-arounds.  A work-around stays only
while the project calls it.

1. ``Trainer.run`` writes ``checkpoint.pth`` in place with ``torch.save``: a run killed during the
   write leaves a truncated file and ``--resume true`` then dies with ``EOFError``.
   → :func:`atomic_checkpoints` (write to a temporary file, then ``os.replace``), used by
   :mod:`espnet_prune.tasks.diar`.
"""

from __future__ import annotations

import contextlib
import os
import types

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
        tmp = f"{os.fspath(f)}.tmp"
        torch.save(obj, tmp, *args, **kwargs)
        os.replace(tmp, f)


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
