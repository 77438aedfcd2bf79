import json
import subprocess
import sys
import time

import pytest

from espnet_prune.bin import diar_score
from espnet_prune.eval.scoring import find_md_eval
from espnet_prune.utils.rttm import RttmSegment, write_rttm

REF = [
    RttmSegment("r1", 0.0, 10.0, "A"),
    RttmSegment("r1", 5.0, 10.0, "B"),
    RttmSegment("r2", 1.0, 4.0, "C"),
]
HYP = [
    RttmSegment("r1", 0.0, 10.0, "s1"),
    RttmSegment("r1", 10.0, 5.0, "s2"),
    RttmSegment("r2", 1.0, 4.0, "s9"),
]


@pytest.fixture
def files(tmp_path):
    write_rttm(tmp_path / "ref.rttm", REF)
    write_rttm(tmp_path / "hyp.rttm", HYP)
    (tmp_path / "uem").write_text("r1 1 0 15\nr2 1 0 6\n")
    return tmp_path


def test_json_and_table(files, capsys):
    out = files / "scores.json"
    assert diar_score.main(
        ["--ref", str(files / "ref.rttm"), "--hyp", str(files / "hyp.rttm"),
         "--uem", str(files / "uem"), "--json", str(out)]
    ) == 0
    scores = json.loads(out.read_text())
    assert scores["per_recording"]["r1"]["miss"] == pytest.approx(5 / 20)
    assert scores["per_recording"]["r2"]["der"] == pytest.approx(0.0)
    assert scores["overall"]["der"] == pytest.approx(5 / 24)
    printed = capsys.readouterr().out
    assert "OVERALL" in printed and "20.83" in printed and "collar=0s" in printed


@pytest.mark.skipif(find_md_eval() is None, reason="md-eval.pl not installed (package 'sctk')")
def test_md_eval_scorer(files, capsys):
    out = files / "md.json"
    diar_score.main(
        ["--ref", str(files / "ref.rttm"), "--hyp", str(files / "hyp.rttm"),
         "--uem", str(files / "uem"), "--scorer", "md-eval", "--json", str(out)]
    )
    assert json.loads(out.read_text())["overall"]["der"] == pytest.approx(5 / 24, abs=1e-4)


def test_bad_input_is_one_line_error(files):
    result = subprocess.run(
        [sys.executable, "-m", "espnet_prune.bin.diar_score", "--ref",
         str(files / "missing.rttm"), "--hyp", str(files / "hyp.rttm")],
        capture_output=True, text=True,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error:") and "missing.rttm" in result.stderr
    assert "Traceback" not in result.stderr


def test_starts_without_torch_or_espnet2(files):
    code = (
        "import sys; from espnet_prune.bin import diar_score; "
        f"diar_score.main(['--ref', '{files / 'ref.rttm'}', '--hyp', '{files / 'hyp.rttm'}']); "
        "heavy = [m for m in ('torch', 'espnet2', 's3prl') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, result.stderr
    # generous: the shared CI/dev machines are often loaded; torch alone would add ~10 s idle
    assert elapsed < 60, f"diar_score took {elapsed:.1f} s to start and score"
