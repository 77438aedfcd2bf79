"""Packaging facts the installer relies on."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _install_requires() -> list[str]:
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "install_requires":
            return [elt.value for elt in node.value.elts]
    raise AssertionError("setup.py has no install_requires")


def test_plain_pip_install_cannot_swap_torch():
    names = {re.split(r"[<>=!~\[; ]", req)[0].lower() for req in _install_requires()}
    assert not names & {"torch", "torchaudio", "espnet", "s3prl", "espnet-s3prl"}


def test_requirements_are_fully_pinned_closure():
    lines = [
        line.strip()
        for line in (ROOT / "tools" / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[A-Za-z0-9_.+\-]+", line) for line in lines), lines
    pins = dict(line.lower().replace("_", "-").split("==") for line in lines)
    assert pins["torch"] == pins["torchaudio"] == "2.11.0"
    assert pins["espnet"] == "202511"
    needed_names = (
        "espnet-s3prl", "transformers", "pyannote.core", "pyannote.metrics", "soundfile"
    )
    for needed in needed_names:
        assert needed in pins or needed.replace(".", "-") in pins, needed


def test_console_scripts_point_at_bin_modules():
    source = (ROOT / "setup.py").read_text()
    for name in re.findall(r'"(\w+)",\n', source.split("for name in")[1].split(")")[0]):
        assert (ROOT / "espnet_prune" / "bin" / f"{name}.py").is_file(), name
