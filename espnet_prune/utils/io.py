"""Safe file writing: outputs appear under their final name only once complete.

``atomic_path(path)`` yields a temporary path in the same directory; on success it is renamed
onto ``path`` (``os.replace``, atomic on POSIX), on any exception it is removed, so an
interrupted or failed write never leaves a final-looking, truncated file.  Problems a user can
fix (missing or unwritable directory, ``path`` being a directory) are one-line
:class:`~espnet_prune.errors.ConfigError` naming the path.

Cheap to import (no torch, no espnet2).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from espnet_prune.errors import ConfigError


def check_output_file(path, *, make_parents: bool = False) -> Path:
    """Validate that ``path`` can be written as a file; return it as a :class:`Path`.

    ``make_parents`` creates missing parent directories (else a missing one is an error)."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: output path is a directory, expected a file name")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists() and make_parents:
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"{path}: cannot create the output directory {parent} "
                              f"({exc.strerror or exc})") from exc
    if not parent.exists():
        raise ConfigError(f"{path}: output directory {parent} does not exist")
    if not parent.is_dir():
        raise ConfigError(f"{path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{path}: output directory {parent} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        # rename would still replace it, but a read-only existing file signals intent
        raise ConfigError(f"{path}: output file exists and is read-only")
    _probe(path, parent)  # access() says yes to root and on some file systems: really try
    return path


def _probe(path: Path, parent: Path) -> None:
    """Create and remove a temporary file in ``parent``; failure is a ConfigError on ``path``."""
    try:
        fd, name = tempfile.mkstemp(prefix=".espnet_prune.", suffix=".probe", dir=parent)
    except OSError as exc:
        where = "" if parent == path else f" in {parent}"
        raise ConfigError(f"{path}: cannot write{where} ({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(name)


def check_output_dir(path) -> Path:
    """Validate (and create) an output directory; one-line ConfigError naming it on failure."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{path}: output directory path is an existing file")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot create the output directory "
                          f"({exc.strerror or exc})") from exc
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"{path}: output directory is not writable")
    _probe(path, path)
    return path


@contextlib.contextmanager
def atomic_path(path, *, make_parents: bool = False) -> Iterator[Path]:
    """Yield a temporary :class:`Path` next to ``path``; rename it onto ``path`` on success.

    On an exception inside the block the temporary file is removed and the exception
    propagates; ``path`` is left untouched (an earlier version stays as it was).
    An ``OSError`` from the final rename becomes a ConfigError naming ``path``.
    """
    path = check_output_file(path, make_parents=make_parents)
    parent = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write in {parent} ({exc.strerror or exc})") from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        try:
            mode = 0o666 & ~_umask()
            os.chmod(tmp, mode)  # mkstemp makes 0600; give the usual permissions
            os.replace(tmp, path)
        except OSError as exc:
            raise ConfigError(f"{path}: cannot write ({exc.strerror or exc})") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@contextlib.contextmanager
def atomic_write(path, *, make_parents: bool = False) -> Iterator[Path]:
    """:func:`atomic_path` whose write errors inside the block (disk full, quota, I/O error)
    are one ConfigError line naming ``path``, not a traceback of the writing library."""
    with atomic_path(path, make_parents=make_parents) as tmp:
        try:
            yield tmp
        except OSError as exc:
            raise ConfigError(f"{path}: cannot write ({exc.strerror or exc})") from None


def _umask() -> int:
    """The process umask, read without changing it where Linux allows (thread safety)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_torch_save(obj, path, *, make_parents: bool = True) -> None:
    """``torch.save`` through :func:`atomic_path`; write errors name ``path``."""
    import torch

    with atomic_path(path, make_parents=make_parents) as tmp:
        try:
            torch.save(obj, tmp)
        except OSError as exc:  # disk full, ...
            raise ConfigError(f"{path}: cannot write ({exc.strerror or exc})") from exc
        except RuntimeError as exc:  # torch wraps write failures in inline_container errors
            raise ConfigError(f"{path}: cannot write ({str(exc).splitlines()[0]})") from exc
