"""pyannote.audio's own module files, loaded without pyannote.audio's package ``__init__``.

tools/requirements.txt pins pyannote.audio without its dependencies (lightning & co., see
espnet_prune/FIDELITY.md), so ``import pyannote.audio`` fails here; its leaf modules (powerset,
VBx, the WeSpeaker ResNet) need only torch/numpy/scipy/einops. The tests that compare our
re-implementations with pyannote's load those files through :func:`pyannote_module`. A missing
pyannote.audio fails those tests instead of skipping them: the pinned environment has it, and a
re-implementation whose equality is not checked is not kept.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
import types
from pathlib import Path


def pyannote_audio_root() -> Path | None:
    """Directory of the installed ``pyannote/audio`` package (its files are not executed)."""
    try:
        spec = importlib.util.find_spec("pyannote.audio")
    except ImportError:
        return None
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


@functools.cache
def pyannote_module(name: str) -> types.ModuleType:
    """``pyannote.audio.<...>`` module ``name`` with every package ``__init__`` replaced by an
    empty stand-in. ``sys.modules`` is left as it was: the returned module keeps what it imported.
    """
    root = pyannote_audio_root()
    if root is None:
        raise ModuleNotFoundError(
            "pyannote.audio is not installed (tools/install.sh pins it): the comparison of our "
            "re-implementation with pyannote.audio's cannot run"
        )
    before = set(sys.modules)
    saved = {key: sys.modules[key] for key in before if key.startswith("pyannote.audio")}
    try:
        for init in root.rglob("__init__.py"):
            package = ".".join(("pyannote", "audio", *init.parent.relative_to(root).parts))
            stand_in = types.ModuleType(package)
            stand_in.__path__ = [str(init.parent)]
            sys.modules[package] = stand_in
        return importlib.import_module(name)
    finally:
        for key in [key for key in sys.modules if key.startswith("pyannote.audio")]:
            if key not in before:
                del sys.modules[key]
        sys.modules.update(saved)

