"""Reading any PyTorch checkpoint the project is given, without unpickling it.

Every checkpoint the project reads (WavLM files, ESPnet model files, ``--init_param``,
WeSpeaker, the DiariZen import, run states) goes through :func:`read_checkpoint`: it loads with
``weights_only=True``, so a file that would need arbitrary Python objects (code execution) is
refused with a one-line ``CheckpointError`` that names the file and the offending global, and
every other problem (missing, empty, truncated, a directory) is one line naming the file too.
"""

from __future__ import annotations

import os
import pickle
import pickletools
import re
import warnings
import zipfile

import torch
from torch.torch_version import TorchVersion

from espnet_prune.errors import CheckpointError

# harmless classes some legitimate checkpoints pickle (pyannote/Lightning store versions as
# TorchVersion, a str subclass); allowed in addition to torch's weights-only defaults
SAFE_GLOBALS = [TorchVersion]


class InertObject:
    """Stand-in for a pickled object of a class that is not imported (e.g. pyannote's task
    specifications in a Lightning checkpoint): it keeps its arguments and state and runs none
    of the original class's code."""

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.args = args
        return obj

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.state = state


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _is_zip(path) -> bool:
    try:
        return zipfile.is_zipfile(path)
    except OSError:
        return False


def pickled_globals(path) -> list[str]:
    """The ``module.name`` globals a checkpoint's pickle refers to, found without unpickling
    (torch's zip format via torch, a bare pickle by scanning its opcodes)."""
    allowed = {f"{g.__module__}.{g.__qualname__}" for g in SAFE_GLOBALS}
    if _is_zip(path):
        try:
            names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        except Exception:  # a damaged archive: no names to report
            names = []
        return [n for n in names if n not in allowed]
    names, strings = [], []
    try:
        with open(path, "rb") as f:
            for opcode, arg, _ in pickletools.genops(f):
                if opcode.name == "GLOBAL":
                    names.append(str(arg).replace(" ", "."))
                elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                    names.append(f"{strings[-2]}.{strings[-1]}")
                elif isinstance(arg, str):
                    strings.append(arg)
                if opcode.name == "STOP":
                    break
    except Exception:  # not a pickle or a damaged one: report what was found so far
        pass
    # a bare pickle is not scanned by torch: skip what its weights-only reader allows anyway
    return [n for n in names if n not in allowed and not n.startswith(("torch.", "collections."))]


def _inert_globals(path, inert_prefixes: tuple[str, ...]) -> list:
    """``(InertObject, name)`` for the pickled globals under ``inert_prefixes``."""
    if not inert_prefixes or not _is_zip(path):
        return []
    return [(InertObject, name) for name in pickled_globals(path)
            if name.startswith(inert_prefixes)]


def refusal_message(path, what: str, exc: BaseException) -> str:
    """One line: why the file is not unpickled and how to convert a trusted one."""
    names = pickled_globals(path)
    if not names:
        match = re.search(r"GLOBAL ([\w.]+)", str(exc))
        names = [match.group(1)] if match else []
    reason = (f"it pickles the Python object {names[0]!r}" if names
              else f"it is not plain data ({_first_line(exc)})")
    return (f"{path}: refusing to unpickle the {what}: {reason}, and unpickling could run "
            "arbitrary code (only tensors, numbers, strings, lists and dicts are read). If you "
            "trust its source, convert it once to a plain state dict: python -c \"import torch; "
            f"c = torch.load('{path}', weights_only=False); "
            "torch.save(c.get('state_dict', c), 'plain.pt')\"")


def read_checkpoint(path, what: str = "checkpoint", inert_prefixes: tuple[str, ...] = (),
                    extra_globals: tuple = ()):
    """``torch.load(path, weights_only=True)`` on CPU with one-line errors naming the file.

    ``inert_prefixes`` (e.g. ``("pyannote.",)``): pickled objects of classes under these
    module prefixes come back as :class:`InertObject` instead of refusing the file.
    ``extra_globals``: more plain-data types the weights-only unpickler may build."""
    noun = what if what.endswith("file") else f"{what} file"
    if os.path.isdir(path):
        raise CheckpointError(f"{path}: is a directory, expected a {noun}")
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such {noun}")
    if os.path.getsize(path) == 0:
        raise CheckpointError(f"{path}: {noun} is empty (0 bytes; an interrupted write or "
                              "download?)")
    allowed = SAFE_GLOBALS + _inert_globals(path, inert_prefixes) + list(extra_globals)
    try:
        with torch.serialization.safe_globals(allowed), warnings.catch_warnings():
            # a bare pickle (not torch's zip format) triggers a protocol notice: it is refused
            # or read by the weights-only unpickler either way
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only load failed" in str(exc).lower() or "weightsunpickler" in str(exc).lower():
            raise CheckpointError(refusal_message(path, what, exc)) from None
        raise CheckpointError(f"{path}: cannot read {what} ({_first_line(exc)})") from None
    except PermissionError as exc:
        raise CheckpointError(f"{path}: cannot read {what} ({exc.strerror})") from None
    except (EOFError, OSError) as exc:  # torch's zip reader: EINVAL when seeking past the end
        raise CheckpointError(f"{path}: {noun} is truncated or corrupted "
                              f"({type(exc).__name__}: {_first_line(exc)})") from None
    except RuntimeError as exc:
        if "zip archive" in str(exc) or "central directory" in str(exc):
            raise CheckpointError(f"{path}: {noun} is truncated or corrupted (not a "
                                  "readable PyTorch zip archive)") from None
        raise CheckpointError(f"{path}: cannot read {what} ({_first_line(exc)})") from None
    except Exception as exc:  # unpickling errors come in many types
        raise CheckpointError(f"{path}: cannot read {what} (not a PyTorch checkpoint: "
                              f"{type(exc).__name__}: {_first_line(exc)})") from None
