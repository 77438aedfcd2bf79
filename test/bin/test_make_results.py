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


def add_model(exp, tmp_path, name, hyp, stats):
    """One more scored model (as stage 7-8 leave it)."""
    out = exp / name / "decode" / "test"
    out.mkdir(parents=True)
    write_rttm(out / "rttm", hyp)
    diar_score.main(["--ref", str(tmp_path / "ref.rttm"), "--hyp", str(out / "rttm"),
                     "--uem", str(tmp_path / "uem"), "--json", str(out / "score.json")])
    params, macs, rtf = stats
    (exp / name / "wavlm_stats.json").write_text(
        json.dumps({"params": params, "macs_per_second": macs}))
    (exp / name / "wavlm_bench.json").write_text(json.dumps({SPEED_KEY: rtf}))


def test_paper_table_rows_orders_and_plot(expdir, tmp_path):
    """Both pruning orders at two sparsities: one row each, the order named, the target read
    from the name or (unsuffixed) from the pruning run; the plot has both orders' colours."""
    import numpy as np
    from matplotlib.image import imread

    add_model(expdir, tmp_path, "pruned_s90", HYPS["teacher"], (100_000, 0.2e9, 0.005))
    add_model(expdir, tmp_path, "pruned_pt", HYPS["fbank"], (210_000, 0.45e9, 0.011))
    add_model(expdir, tmp_path, "pruned_pt_s90", HYPS["fbank"], (90_000, 0.19e9, 0.005))
    for run_dir, target in (("prune", 0.8), ("prune_pt", 0.8)):
        (expdir / run_dir).mkdir()
        (expdir / run_dir / "prune_summary.json").write_text(
            json.dumps({"target_sparsity": target}))
    models = ["fbank", "teacher", "pruned", "pruned_s90", "pruned_pt", "pruned_pt_s90"]
    plot = expdir / "results.png"
    assert run(expdir, tmp_path, "--models", *models, "--plot", str(plot)) == 0
    text = (tmp_path / "RESULTS.md").read_text()
    rows = {line.split("|")[1]: line for line in text.splitlines() if line.startswith("|")}
    assert all(name in rows for name in models)
    assert rows["pruned"].endswith("|fine-tune -> prune|")
    assert rows["pruned_s90"].endswith("|fine-tune -> prune|") and "8.00x" in rows["pruned_s90"]
    assert rows["pruned_pt"].endswith("|prune -> fine-tune|")
    assert rows["pruned_pt_s90"].endswith("|prune -> fine-tune|")
    assert rows["teacher"].endswith("|-|") and rows["fbank"].endswith("|-|")
    assert "teacher's WavLM pruned to 80 % sparsity" in text
    assert "pre-trained WavLM pruned to 90 % sparsity" in text
    assert "pre-trained WavLM pruned to 80 % sparsity" in text
    image = imread(plot)[..., :3]

    def has_colour(hex_colour):
        rgb = np.array([int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])
        return bool((np.abs(image - rgb).max(axis=-1) < 0.02).any())

    assert has_colour("#1f77b4") and has_colour("#ff7f0e")  # tab:blue, tab:orange
    # without pruned models of the second order, its colour is absent
    run(expdir, tmp_path, "--models", "fbank", "teacher", "pruned", "--plot", str(plot))
    image = imread(plot)[..., :3]
    assert has_colour("#1f77b4") and not has_colour("#ff7f0e")
