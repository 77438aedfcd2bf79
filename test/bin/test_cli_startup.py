"""CLIs that need no ESPnet must not pay for importing espnet2 (~15 s) or s3prl."""

import subprocess
import sys

import pytest

LIGHT_CLIS = [
    "wavlm_convert", "wavlm_stats", "wavlm_prune", "wavlm_bench", "diar_score", "diar_bench",
    "diar_plda", "validate_data",
]


def modules_after_help(name: str, also_import: str = "") -> tuple[set[str], str]:
    """Top-level packages loaded by ``python -m espnet_prune.bin.NAME --help`` (then
    ``import also_import``) in a fresh interpreter, and its stdout."""
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['{name}', '--help']\n"
        "try:\n"
        f"    runpy.run_module('espnet_prune.bin.{name}', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        + (f"import {also_import}\n" if also_import else "")
        + "print('LOADED', ' '.join(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    loaded = [line for line in result.stdout.splitlines() if line.startswith("LOADED")]
    assert loaded, result.stdout[-500:] + result.stderr[-2000:]
    return set(loaded[-1].split()[1:]), result.stdout


@pytest.mark.parametrize("name", LIGHT_CLIS)
def test_light_cli_does_not_import_espnet2(name):
    loaded, stdout = modules_after_help(name)
    assert "usage" in stdout.lower()
    assert not loaded & {"espnet2", "s3prl", "espnet"}, sorted(loaded)


@pytest.mark.parametrize("name", LIGHT_CLIS + ["diar_inference"])
def test_cli_does_not_import_onnx(name):
    """onnx/onnxruntime are needed by diar_export and --backend onnxruntime only."""
    loaded, _ = modules_after_help(name, "espnet_prune.infer.run, espnet_prune.diar.powerset")
    assert not loaded & {"onnx", "onnxruntime"}, sorted(loaded)


def test_espnet_clis_start_quietly():
    """Importing ESPnet pulls in g2p_en (NLTK download attempt: 8 lines of ``[nltk_data]``
    errors offline) and prints a flash_attn notice; neither may reach the user."""
    code = (
        "import espnet_prune, runpy, sys\n"
        "import espnet2.tasks.abs_task, espnet2.text.phoneme_tokenizer\n"  # what diar_train loads
        "import espnet.nets.pytorch_backend.transformer.attention\n"
        "assert 'g2p_en' in sys.modules\n"
        "print('IMPORTED')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "IMPORTED" in result.stdout, output[-3000:]
    assert "nltk" not in output.lower() and "flash attention" not in output.lower(), output
    assert output.strip() == "IMPORTED", output
