"""espnet-prune: fine-tune before structured pruning of WavLM for EEND speaker diarization.

Importing this package is cheap: it installs a post-import hook (see
:mod:`espnet_prune.registration`) so that the plugin's s3prl upstream and ESPnet class
choices are registered the moment s3prl/ESPnet are imported, without importing them here.
The Python API (:class:`Diarizer`, :class:`DiarizeSpeech`, :func:`pack_model`) is imported on
first use, through the module's ``__getattr__``::

    from espnet_prune import Diarizer
    annotation = Diarizer.from_pretrained("exp/packed/pruned.zip")("meeting.wav")
"""

from espnet_prune import registration as _registration

__version__ = "0.1.0"

_registration.install()

# public name -> module that defines it (imported on first access)
_LAZY = {
    "Diarizer": "espnet_prune.zoo.pretrained",
    "DiarizeSpeech": "espnet_prune.zoo.espnet_api",
    "pack_model": "espnet_prune.zoo.pack",
}
__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'espnet_prune' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
