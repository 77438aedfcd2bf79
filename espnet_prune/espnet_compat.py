"""Work-arounds for ESPnet 202511 defects this project depends on.

Each fix subclasses/re-implements the smallest ESPnet piece and keeps ESPnet's interface, so it can
be deleted as soon as ESPnet is fixed (``test/test_espnet_compat.py`` checks both the defect and the
fix).  Setting ``ESPNET_PRUNE_DISABLE_COMPAT=1`` makes this module hand out ESPnet's original
objects instead, which is how the tests are shown to fail without the work-arounds.

1. ``espnet2.fileio.rttm.load_rttm_text`` is ``@typechecked`` with a return annotation that does
   not match what it returns, so typeguard raises on every file; ``RttmReader.__contains__``
   returns the key instead of a bool.  → :func:`load_rttm_text`, :class:`RttmReader`,
   installed as ESPnet's ``rttm`` data type by :func:`install_rttm_loader`.
2. ``LabelAggregate(center=False).forward`` never defines the number of frames
   (``UnboundLocalError``).  → :class:`LabelAggregate`.
3. ``DiarizeSpeech.__call__`` ends with ``return waves, pred if enh_s2t_task else pred``, which
   always returns the tuple ``(waves, pred)`` — ``(None, pred)`` for plain diarization.
   → :class:`DiarizeSpeech`.
4. ``Trainer.run`` writes ``checkpoint.pth`` in place with ``torch.save``: a run killed during the
   write leaves a truncated file and ``--resume true`` then dies with ``EOFError``.
   → :func:`atomic_checkpoints` (write to a temporary file, then ``os.replace``).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import types
from pathlib import Path

import torch
from espnet.nets.pytorch_backend.nets_utils import make_pad_mask
from espnet2.fileio import rttm as _espnet_rttm
from espnet2.fileio.rttm import RttmReader as _EspnetRttmReader
from espnet2.layers.label_aggregation import LabelAggregate as _EspnetLabelAggregate

DISABLED = os.environ.get("ESPNET_PRUNE_DISABLE_COMPAT", "") not in ("", "0")


def _load_rttm_text(path: str | Path) -> dict:
    """ESPnet's sample-based RTTM (with END lines), parsed exactly as ESPnet intends."""
    data: dict[str, tuple[list[str], list[tuple[str, int, int]], int]] = {}
    with Path(path).open("r", encoding="utf-8") as f:
        for linenum, line in enumerate(f, 1):
            fields = re.split(" +", line.rstrip())
            if len(fields) != 9:
                raise ValueError(f"{path}:{linenum}: does not have exactly 9 fields")
            label_type, utt_id, _, start, end, _, _, spk_id, _ = fields
            if label_type not in ("SPEAKER", "END"):
                raise ValueError(f"{path}:{linenum}: unsupported label type {label_type!r}")
            spk_list, spk_event, max_duration = data.get(utt_id, ([], [], 0))
            if label_type == "END":
                data[utt_id] = (spk_list, spk_event, int(end))
                continue
            if spk_id not in spk_list:
                spk_list.append(spk_id)
            spk_event = spk_event + [(spk_id, int(float(start)), int(float(end)))]
            data[utt_id] = (spk_list, spk_event, max_duration)
    return data


class _RttmReader(_EspnetRttmReader):
    def __init__(self, fname: str | Path):  # no @typechecked: fname may be a Path
        self.fname = str(fname)
        self.data = _load_rttm_text(fname)

    def __contains__(self, item) -> bool:
        return item in self.data


class _LabelAggregate(_EspnetLabelAggregate):
    def forward(self, input: torch.Tensor, ilens: torch.Tensor | None = None):
        if self.center:
            return super().forward(input, ilens)
        bs, max_length, label_dim = input.shape
        if max_length < self.win_length:
            nframe = 0
            output = input.new_zeros((bs, 0, label_dim))
        else:
            nframe = (max_length - self.win_length) // self.hop_length + 1
            frames = input.contiguous().as_strided(
                (bs, nframe, self.win_length, label_dim),
                (max_length * label_dim, self.hop_length * label_dim, label_dim, 1),
            )
            output = torch.gt(frames.sum(dim=2), self.win_length // 2).float()
        if ilens is None:
            return output, None
        olens = torch.clamp(
            torch.div(ilens - self.win_length, self.hop_length, rounding_mode="trunc") + 1, min=0
        )
        if nframe > 0:
            output = output.masked_fill(make_pad_mask(olens, output, 1), 0.0)
        return output, olens


@functools.cache
def _diarize_speech_classes():
    # espnet2.bin.diar_inference pulls in every diarization task: import it only when asked for
    from espnet2.bin.diar_inference import DiarizeSpeech as espnet_diarize_speech

    class FixedDiarizeSpeech(espnet_diarize_speech):
        def __call__(self, speech, fs: int = 8000):
            result = super().__call__(speech, fs=fs)
            if self.enh_s2t_task:
                return result
            # ESPnet returns (waves, pred) where waves is None for plain diarization
            if isinstance(result, tuple) and len(result) == 2 and result[0] is None:
                return result[1]
            return result

    return espnet_diarize_speech, FixedDiarizeSpeech


def __getattr__(name):
    if name == "DiarizeSpeech":
        original, fixed = _diarize_speech_classes()
        return original if DISABLED else fixed
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


def install_rttm_loader(dataset_module=None) -> None:
    """Make ESPnet's ``rttm`` data type use the fixed reader.

    Run by the post-import hook when ``espnet2.train.dataset`` is imported (see
    :mod:`espnet_prune.registration`), so ESPnet datasets with type ``rttm`` work in any process
    that imported ``espnet_prune``.
    """
    if DISABLED:
        return
    if dataset_module is None:
        import espnet2.train.dataset as dataset_module

    dataset_module.DATA_TYPES["rttm"]["func"] = _RttmReader


if DISABLED:
    load_rttm_text = _espnet_rttm.load_rttm_text
    RttmReader = _EspnetRttmReader
    LabelAggregate = _EspnetLabelAggregate
else:
    load_rttm_text = _load_rttm_text
    RttmReader = _RttmReader
    LabelAggregate = _LabelAggregate

