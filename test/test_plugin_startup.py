"""ESPnet's own CLI and s3prl's hub see the plugin in a fresh interpreter that never imports
espnet_prune: the start-up line espnet_prune_plugin.pth (installed into site-packages by the
wheel, or by tools/install.sh for the editable install) installs the registration hook."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PTH = ROOT / "espnet_prune_plugin.pth"

# the user's program: s3prl's hub, then ESPnet's training CLI --help (no espnet_prune import)
HUB = """
import s3prl.hub
print("S3PRL", hasattr(s3prl.hub, "wavlm_prunable_local"))
"""
CLI = """
import runpy, sys
sys.argv = ["diar_train", "--help"]
try:
    runpy.run_module("espnet2.bin.diar_train", run_name="__main__", alter_sys=True)
except SystemExit:
    pass
"""


def run_fresh(site_dir: Path, program: str, **env) -> str:
    """``program`` in a new interpreter whose site directories include ``site_dir`` (the
    .pth files there are processed exactly as site-packages' are at start-up)."""
    prefix = f"import site; site.addsitedir({str(site_dir)!r})\n"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), **env}
    proc = subprocess.run([sys.executable, "-c", prefix + program], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_startup_line_registers_plugin_in_espnet_cli_and_s3prl_hub(tmp_path):
    shutil.copy(PTH, tmp_path / PTH.name)
    out = run_fresh(tmp_path, HUB + CLI)
    assert "S3PRL True" in out
    frontend_help = out[out.index("--frontend"):]
    assert "wavlm_prunable" in frontend_help.split("\n  --", 1)[0], frontend_help[:600]


def test_without_the_startup_line_s3prl_does_not_see_the_plugin(tmp_path):
    """The control: the same interpreter with the line switched off."""
    shutil.copy(PTH, tmp_path / PTH.name)
    assert "S3PRL False" in run_fresh(tmp_path, HUB, ESPNET_PRUNE_NO_PLUGIN="1")


def test_installed_startup_line_is_the_current_one():
    """tools/install.sh copies the line into the venv; a stale copy would be silently old."""
    installed = Path(sysconfig.get_paths()["purelib"]) / PTH.name
    install_sh = (ROOT / "tools" / "install.sh").read_text()
    assert f"cp ../{PTH.name} " in install_sh
    if installed.exists():
        assert installed.read_text() == PTH.read_text()


def test_broken_package_does_not_break_the_interpreter(tmp_path):
    """Every interpreter of the environment runs the line: an espnet_prune that fails to
    import must cost the plugin, not the interpreter."""
    broken = tmp_path / "broken" / "espnet_prune"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise RuntimeError('broken')\n")
    site_dir = tmp_path / "site"
    site_dir.mkdir()
    shutil.copy(PTH, site_dir / PTH.name)
    code = f"import site; site.addsitedir({str(site_dir)!r}); print('ok')"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(tmp_path / "broken")},
                          timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
    assert "Traceback" not in proc.stderr
