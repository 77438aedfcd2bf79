"""The API is reachable from the package's top level without making ``import espnet_prune``
import ESPnet, s3prl, torch or the API's module."""

import subprocess
import sys

CODE = """
import sys
import espnet_prune
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("espnet2", "s3prl", "torch")
               or m.startswith("espnet_prune.zoo"))
print("HEAVY", heavy)
from espnet_prune import Diarizer, DiarizeSpeech, pack_model
print("API", Diarizer.__module__, DiarizeSpeech.__module__, pack_model.__module__)
print("ALL", sorted(espnet_prune.__all__))
"""


def test_lazy_top_level_api():
    proc = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout
    assert ("API espnet_prune.zoo.pretrained espnet_prune.zoo.espnet_api espnet_prune.zoo.pack"
            in proc.stdout)
    assert "ALL ['DiarizeSpeech', 'Diarizer', 'pack_model']" in proc.stdout


def test_unknown_attribute_is_an_attribute_error():
    import espnet_prune

    try:
        espnet_prune.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("no AttributeError")

