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


def test_every_command_line_has_a_console_script():
    import runpy
    from importlib.metadata import entry_points

    scripts = runpy.run_path(str(ROOT / "setup.py"), run_name="not_main")["CONSOLE_SCRIPTS"]
    names = {path.stem for path in (ROOT / "espnet_prune" / "bin").glob("*.py")} - {"__init__"}
    assert sorted(scripts) == sorted(
        f"espnet-prune-{name.replace('_', '-')}=espnet_prune.bin.{name}:main" for name in names)
    # and the installed package (tools/install.sh: pip install -e) offers them
    installed = {ep.name for ep in entry_points(group="console_scripts")
                 if ep.value.startswith("espnet_prune.bin.")}
    assert installed == {f"espnet-prune-{name.replace('_', '-')}" for name in names}
