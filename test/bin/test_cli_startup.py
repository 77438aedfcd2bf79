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
