"""``espnet_prune.ssl`` sits beside ``prune``: it imports only ``wavlm``, ``utils`` and
``errors`` of this project, and no ESPnet (the task module brings ESPnet in)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import espnet_prune

SSL = Path(espnet_prune.__file__).parent / "ssl"
ALLOWED = ("espnet_prune.ssl", "espnet_prune.wavlm", "espnet_prune.utils", "espnet_prune.errors")


def imported_modules(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


def test_ssl_imports_only_lower_layers():
    files = sorted(SSL.glob("*.py"))
    assert len(files) >= 5
    for path in files:
        for name in imported_modules(path):
            assert not name.startswith("espnet2"), (path.name, name)
            if name.startswith("espnet_prune"):
                assert name.startswith(ALLOWED), (path.name, name)


def test_importing_ssl_does_not_import_espnet2():
    code = "import sys, espnet_prune.ssl; print('espnet2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"
