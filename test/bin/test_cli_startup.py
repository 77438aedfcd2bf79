"""CLIs that need no ESPnet must not pay for importing espnet2 (~15 s) or s3prl."""

import subprocess
import sys

import pytest

LIGHT_CLIS = [
    "wavlm_convert", "wavlm_stats", "wavlm_prune", "wavlm_bench", "diar_score", "diar_bench",
    "diar_plda", "validate_data",
]


@pytest.mark.parametrize("name", LIGHT_CLIS)
def test_light_cli_does_not_import_espnet2(name):
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['{name}', '--help']\n"
        "try:\n"
        f"    runpy.run_module('espnet_prune.bin.{name}', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'espnet2', 's3prl', 'espnet'})\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert "usage" in result.stdout.lower(), result.stderr[-2000:]
    assert "HEAVY []" in result.stdout, result.stdout[-500:]


@pytest.mark.parametrize("name", LIGHT_CLIS + ["diar_inference"])
def test_cli_does_not_import_onnx(name):
    """onnx/onnxruntime are needed by diar_export and --backend onnxruntime only."""
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['{name}', '--help']\n"
        "try:\n"
        f"    runpy.run_module('espnet_prune.bin.{name}', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "import espnet_prune.infer.run, espnet_prune.diar.powerset\n"
        "onnx = sorted({m.split('.')[0] for m in sys.modules} & {'onnx', 'onnxruntime'})\n"
        "print('ONNX', onnx)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert "ONNX []" in result.stdout, result.stdout[-500:] + result.stderr[-2000:]


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
