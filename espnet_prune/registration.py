"""Lazy registration of the plugin's names into s3prl and ESPnet.

Importing s3prl's hub or ESPnet's task modules costs seconds (espnet2 ~15 s), so
``import espnet_prune`` must not import them.  Instead a post-import hook is installed on
``sys.meta_path``: when (and only when) a target module such as ``s3prl.hub`` is imported,
its registration functions run right after the module body, so ``getattr(s3prl.hub,
"wavlm_prunable_local")`` resolves for every s3prl user in the process.  If the target was
already imported before ``espnet_prune``, registration runs immediately.

The same hook runs a few third-party module bodies inside a context (``AROUND_IMPORT``): ESPnet
imports ``g2p_en`` (through its phoneme tokenizer, which this plugin never uses), and g2p_en
tries to download NLTK data while it is being imported, which offline prints eight lines of
``[nltk_data] Error loading ...`` on every command. The download is skipped for that import
only; ``g2p_en.G2p()`` itself still fails with NLTK's own message if someone uses it.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.util
import sys
import threading
from collections.abc import Callable

# target module -> list of "module:function" registration callables (imported lazily)
REGISTRATIONS: dict[str, list[str]] = {
    "s3prl.hub": ["espnet_prune.wavlm.s3prl_upstream:register_s3prl_upstreams"],
    "espnet2.tasks.diar": ["espnet_prune.diar.frontends:register_espnet_frontends"],
    # --init_param without unpickling (ESPnet's loader uses weights_only=False)
    "espnet2.tasks.abs_task": ["espnet_prune.diar.model_file:install_safe_init_param"],
}



@contextlib.contextmanager
def _without_nltk_download():
    import nltk

    original = nltk.download
    nltk.download = lambda *args, **kwargs: False  # the data stay missing; nothing is printed
    try:
        yield
    finally:
        nltk.download = original


@contextlib.contextmanager
def _without_flash_attention_notice():
    """ESPnet's attention module prints "Failed to import Flash Attention ..." on stdout when
    the optional flash_attn is missing (it is on CPU, and ESPnet's fallback is what we use)."""
    import io

    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            yield
    finally:
        kept = [line for line in buffer.getvalue().splitlines(keepends=True)
                if not line.startswith("Failed to import Flash Attention")]
        sys.stdout.write("".join(kept))


# module -> context manager its body runs in
AROUND_IMPORT: dict[str, Callable] = {
    "g2p_en.g2p": _without_nltk_download,
    "espnet.nets.pytorch_backend.transformer.attention": _without_flash_attention_notice,
}

_done: set[tuple[str, str]] = set()
_lock = threading.RLock()


def _resolve(spec: str) -> Callable:
    module_name, func_name = spec.split(":")
    return getattr(importlib.import_module(module_name), func_name)


def run_registrations(target: str) -> list[str]:
    """Run (once) every registration for an already imported ``target`` module."""
    ran = []
    with _lock:
        for spec in REGISTRATIONS.get(target, []):
            if (target, spec) in _done:
                continue
            _done.add((target, spec))
            _resolve(spec)(sys.modules[target])
            ran.append(spec)
    return ran


class _PostImportLoader(importlib.abc.Loader):
    def __init__(self, wrapped: importlib.abc.Loader, target: str):
        self._wrapped = wrapped
        self._target = target

    def create_module(self, spec):
        return self._wrapped.create_module(spec)

    def exec_module(self, module):
        around = AROUND_IMPORT.get(self._target, contextlib.nullcontext)
        with around():
            self._wrapped.exec_module(module)
        run_registrations(self._target)

    def __getattr__(self, name):  # get_source, get_code, is_package ... for tracebacks/pkgutil
        return getattr(self._wrapped, name)


class _PostImportFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname not in REGISTRATIONS and fullname not in AROUND_IMPORT:
            return None
        for finder in sys.meta_path:
            if finder is self:
                continue
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find else None
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _PostImportLoader(spec.loader, fullname)
                return spec
        return None


_finder = _PostImportFinder()


def install() -> None:
    """Install the hook and register into targets that are already imported."""
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)
    for target in list(REGISTRATIONS):
        if target in sys.modules:
            run_registrations(target)
