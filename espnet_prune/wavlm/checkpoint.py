"""The prunable-WavLM checkpoint file:
``{"format": "espnet_prune.wavlm", "version": 1, "config": dict, "state_dict": {...}}``.

Loading is strict: a missing, unknown or wrong-shape key is a ``CheckpointError`` naming the
file and the key.

No checkpoint is ever unpickled in full: :func:`read_checkpoint` (used for every checkpoint the
project reads) loads with ``weights_only=True``, so a file that would need arbitrary Python
objects (code execution) is refused with a one-line ``CheckpointError`` that names the file and
the offending global.  Writing goes through a temporary file and a rename
(:func:`espnet_prune.utils.io.atomic_torch_save`), so an interrupted write leaves no
final-looking file.
"""

from __future__ import annotations

import json
import os
import pickle
import pickletools
import re
import warnings
import zipfile

import torch
from torch.torch_version import TorchVersion

from espnet_prune.errors import CheckpointError, ConfigError
from espnet_prune.utils.state_dict import load_state_dict_strict
from espnet_prune.wavlm.config import WavLMConfig
from espnet_prune.wavlm.model import WavLM

FORMAT = "espnet_prune.wavlm"
VERSION = 1


# harmless classes some legitimate checkpoints pickle (pyannote/Lightning store versions as
# TorchVersion, a str subclass); allowed in addition to torch's weights-only defaults
SAFE_GLOBALS = [TorchVersion]


def save_wavlm(model: WavLM, path) -> None:
    """Write ``path`` atomically (parents created); a bad output path is a one-line error."""
    from espnet_prune.utils.io import atomic_torch_save

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_torch_save({"format": FORMAT, "version": VERSION, "config": model.config.to_dict(),
                       "state_dict": state}, path)


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


def load_wavlm(path, pruning_units=None) -> WavLM:
    """Load a checkpoint written by ``save_wavlm`` (eval mode, CPU).

    A masked checkpoint (config lists ``pruning_units``) comes back with its gates; passing
    ``pruning_units`` for an ungated checkpoint adds fresh gates after loading."""
    data = read_checkpoint(path, "WavLM checkpoint")
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an espnet_prune WavLM checkpoint (key 'format' "
                              f"must be {FORMAT!r}; convert it with the wavlm_convert "
                              "command line)")
    if data.get("version") != VERSION:
        raise CheckpointError(f"{path}: unsupported key 'version' = {data.get('version')!r}")
    for key in ("config", "state_dict"):
        if not isinstance(data.get(key), dict):
            raise CheckpointError(f"{path}: missing or malformed key {key!r}")
    try:
        config = WavLMConfig.from_dict(data["config"])
    except (ConfigError, TypeError) as exc:
        raise CheckpointError(f"{path}: bad key 'config': {exc}") from exc
    model = WavLM(config)
    load_state_dict_strict(model, data["state_dict"], path)
    if pruning_units and not config.pruning_units:
        model.add_pruning_gates(pruning_units)
    return model.eval()


def prune_file(source: str, output: str) -> dict:
    """``wavlm_prune``: physically prune the masked checkpoint ``source`` (units whose
    deterministic gate is 0 go, kept gate values are folded into the next layer) into
    ``output``; prints and returns a one-line JSON summary."""
    from espnet_prune.utils.io import check_output_file
    from espnet_prune.wavlm.counting import count_params

    check_output_file(output, make_parents=True)
    model = load_wavlm(source)
    if not model.config.pruning_units:
        raise CheckpointError(f"{source}: config has no 'pruning_units' (not a masked "
                              "checkpoint); nothing to prune")
    params_before = count_params(model.config, model.structure("actual"))
    model.prune()
    save_wavlm(model, output)
    summary = {"output": output, "params_before": params_before,
               "params": model.num_params(), "macs_per_second": model.macs_per_second()}
    print(json.dumps(summary))
    return summary
