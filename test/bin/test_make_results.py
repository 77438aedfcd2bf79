import json
import subprocess
import sys

import pytest

from espnet_prune.bin import diar_score, make_results
from espnet_prune.errors import DataError
from espnet_prune.eval.results import SPEED_KEY
from espnet_prune.utils.rttm import RttmSegment, write_rttm

REF = [RttmSegment("r1", 0.0, 6.0, "A"), RttmSegment("r1", 4.0, 6.0, "B")]
HYPS = {
    "fbank": [RttmSegment("r1", 0.0, 5.0, "x"), RttmSegment("r1", 5.0, 5.0, "y")],
    "teacher": [RttmSegment("r1", 0.0, 6.0, "x"), RttmSegment("r1", 4.5, 5.5, "y")],
    "pruned": [RttmSegment("r1", 0.0, 6.0, "x"), RttmSegment("r1", 5.0, 5.0, "y")],
}
STATS = {"teacher": (1_000_000, 2.0e9, 0.040), "pruned": (200_000, 0.4e9, 0.010)}


@pytest.fixture
def expdir(tmp_path):
    write_rttm(tmp_path / "ref.rttm", REF)
    (tmp_path / "uem").write_text("r1 1 0 10\n")
    exp = tmp_path / "exp"
    for name, hyp in HYPS.items():
        out = exp / name / "decode" / "test"
        out.mkdir(parents=True)
        write_rttm(out / "rttm", hyp)
        diar_score.main(["--ref", str(tmp_path / "ref.rttm"), "--hyp", str(out / "rttm"),
                         "--uem", str(tmp_path / "uem"), "--json", str(out / "score.json")])
        if name in STATS:
            params, macs, rtf = STATS[name]
            (exp / name / "wavlm_stats.json").write_text(
                json.dumps({"params": params, "macs_per_second": macs}))
            (exp / name / "wavlm_bench.json").write_text(json.dumps({SPEED_KEY: rtf}))
    (exp / "stage_times.tsv").write_text("1\t10\t0\n3\t100\t0\n3\t60\t0\n8\t5\t0\n")
    return exp


def run(expdir, tmp_path, *extra):
    return make_results.main(
        ["--expdir", str(expdir), "--test_sets", "test", "--output_md",
         str(tmp_path / "RESULTS.md"), "--command", "./run.sh --stage 1", *extra]
    )


def test_scores_json_matches_scorer(expdir, tmp_path):
    assert run(expdir, tmp_path) == 0
    scores = json.loads((expdir / "scores.json").read_text())
    assert sorted(scores) == ["fbank", "pruned", "teacher"]
    for name in HYPS:
        scored = json.loads((expdir / name / "decode/test/score.json").read_text())["overall"]
        assert scores[name]["test"]["der"] == pytest.approx(scored["der"])
        assert scores[name]["test"]["jer"] == pytest.approx(scored["jer"])
        assert 0 <= scores[name]["test"]["der"] < 1
    # teacher: 12 s of reference speaker time; B's first 0.5 s missed
    assert scores["teacher"]["test"]["der"] == pytest.approx(0.5 / 12)
    assert scores["teacher"]["test"]["params"] == 1_000_000
    assert scores["pruned"]["test"]["macs_per_second"] == pytest.approx(0.4e9)
    assert scores["fbank"]["test"]["params"] == 0
    assert scores["pruned"]["test"]["speedup"] == pytest.approx(4.0)


def test_results_md(expdir, tmp_path):
    run(expdir, tmp_path)
    text = (tmp_path / "RESULTS.md").read_text()
    assert "## Environments" in text and "- pytorch version: `pytorch " in text
    assert "- Git hash: `" in text and "- command: `./run.sh --stage 1`" in text
    # latest duration of each stage: 10 + 60 + 5 s
    assert "- wall time: 1.2 min (stages 1,3,8" in text
    teacher_row = next(line for line in text.splitlines() if line.startswith("|teacher|"))
    assert teacher_row.startswith("|teacher|4.17|") and "|1.000M|2.000G|1.00x|" in teacher_row
    assert "|pruned|" in text and "4.00x" in text
    assert f"## {expdir / 'fbank'}" in text


def test_missing_score_names_file(expdir, tmp_path):
    (expdir / "pruned/decode/test/score.json").unlink()
    with pytest.raises(DataError, match="pruned/decode/test/score.json"):
        run(expdir, tmp_path)


def test_bad_stats_cli_error(expdir, tmp_path):
    (expdir / "teacher/wavlm_stats.json").write_text('{"params": "many"}')
    proc = subprocess.run(
        [sys.executable, "-m", "espnet_prune.bin.make_results", "--expdir", str(expdir),
         "--test_sets", "test", "--output_md", str(tmp_path / "R.md")],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "wavlm_stats.json" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_speed_of_another_schema_is_an_error(expdir, tmp_path):
    (expdir / "pruned/wavlm_bench.json").write_text(json.dumps({"rtf": 0.01}))
    with pytest.raises(DataError, match="pruned/wavlm_bench.json: no positive number under "
                       "'seconds_per_audio_second'"):
        run(expdir, tmp_path)


def test_subset_of_models(expdir, tmp_path):
    run(expdir, tmp_path, "--models", "fbank")
    scores = json.loads((expdir / "scores.json").read_text())
    assert list(scores) == ["fbank"] and "speedup" not in scores["fbank"]["test"]


def test_macro_average_column_and_json(expdir, tmp_path):
    for name in HYPS:  # a second test set: the same scores under another name
        src, dst = expdir / name / "decode" / "test", expdir / name / "decode" / "other"
        dst.mkdir()
        score = json.loads((src / "score.json").read_text())
        score["overall"]["der"] += 0.1
        (dst / "score.json").write_text(json.dumps(score))
    assert make_results.main(
        ["--expdir", str(expdir), "--test_sets", "test", "other", "--macro_average",
         "--output_md", str(tmp_path / "RESULTS.md")]) == 0
    macro = json.loads((expdir / "macro_der.json").read_text())
    assert macro["teacher"]["der"] == pytest.approx(0.5 / 12 + 0.05)
    text = (tmp_path / "RESULTS.md").read_text()
    assert "|model|test DER|test JER|other DER|other JER|macro DER|macro JER|params|" in text
    teacher_row = next(line for line in text.splitlines() if line.startswith("|teacher|"))
    assert f"|{100 * (0.5 / 12 + 0.05):.2f}|" in teacher_row
