"""wavlm_stats / wavlm_convert / wavlm_prune / wavlm_bench command lines."""

import json
import subprocess
import sys

import pytest
import torch
import transformers

from espnet_prune.bin import wavlm_bench, wavlm_convert, wavlm_prune, wavlm_stats
from espnet_prune.eval.results import SPEED_KEY, measured_speed
from espnet_prune.measure.bench import uniform_structure
from espnet_prune.wavlm import WavLM, load_wavlm, save_wavlm, wavlm_config
from espnet_prune.wavlm.counting import count_params, structure_of_config


def _json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.mark.parametrize("preset,params_m,gmacs", [("base_plus", 94.4, 6.9),
                                                   ("large", 315.4, 17.8)])
def test_stats_presets_reproduce_paper(capsys, preset, params_m, gmacs):
    assert wavlm_stats.main([preset]) == 0
    stats = _json(capsys)
    assert round(stats["params"] / 1e6, 1) == params_m
    assert abs(stats["macs_per_second"] / 1e9 - gmacs) <= 0.05
    # the paper's Large 316.6M / the WavLM paper's 94.70M include the pre-training heads
    with_heads = {"base_plus": 94.7, "large": 316.6}[preset]
    assert round(stats["params_with_pretraining_heads"] / 1e6, 1) == with_heads


def test_convert_prune_stats_roundtrip(tmp_path, capsys):
    hf_dir = tmp_path / "hf"
    hf = transformers.WavLMModel(transformers.WavLMConfig(
        hidden_size=48, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        conv_dim=[32] * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)).eval()
    hf.save_pretrained(hf_dir)
    out = tmp_path / "wavlm.pt"
    assert wavlm_convert.main(["--input", str(hf_dir), "--output", str(out)]) == 0
    assert _json(capsys)["num_layers"] == 2
    model = load_wavlm(out)
    model.add_pruning_gates(["conv", "head", "interm"])
    with torch.no_grad():
        for g in model.gates():
            g.log_alpha.copy_(torch.where(torch.rand(g.n) < 0.5, 3.0, -30.0))
            g.log_alpha[0] = 3.0
    masked = tmp_path / "masked.pt"
    save_wavlm(model, masked)
    assert wavlm_stats.main([str(masked)]) == 0
    masked_stats = _json(capsys)
    pruned = tmp_path / "pruned.pt"
    assert wavlm_prune.main(["--input", str(masked), "--output", str(pruned)]) == 0
    capsys.readouterr()
    assert wavlm_stats.main([str(pruned)]) == 0
    pruned_stats = _json(capsys)
    # pruned counts == the gates' deterministic expectation reported for the masked model
    assert pruned_stats["params"] == masked_stats["params"] < 0.8 * WavLM(
        load_wavlm(out).config).num_params()
    assert pruned_stats["macs_per_second"] == masked_stats["macs_per_second"]
    wav = torch.randn(1, 8000)
    with torch.inference_mode():
        a, _ = load_wavlm(masked).extract_features(wav)
        b, _ = load_wavlm(pruned).extract_features(wav)
    assert max(float((x - y).norm() / y.norm()) for x, y in zip(a, b)) <= 1e-5


def test_cli_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.pt"
    torch.save({"format": "espnet_prune.wavlm", "version": 1,
                "config": wavlm_config("tiny").to_dict(), "state_dict": {}}, bad)
    for args in (["espnet_prune.bin.wavlm_stats", str(bad)],
                 ["espnet_prune.bin.wavlm_convert", "--input", str(tmp_path / "nope"),
                  "--output", str(tmp_path / "x.pt")],
                 ["espnet_prune.bin.wavlm_prune", "--input", str(bad), "--output",
                  str(tmp_path / "y.pt")]):
        proc = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
        assert str(tmp_path) in proc.stderr
    proc = subprocess.run([sys.executable, "-c", "import sys; import espnet_prune.bin.wavlm_stats"
                           " as m; m.main(['tiny']); import espnet_prune.wavlm.convert; "
                           "print('espnet2' in sys.modules, 's3prl' in sys.modules, "
                           "'transformers' in sys.modules)"], capture_output=True, text=True)
    assert proc.stdout.strip().splitlines()[-1] == "False False False"


def test_bench_runs_on_tiny_checkpoint(tmp_path, capsys):
    ckpt = tmp_path / "tiny.pt"
    save_wavlm(WavLM(wavlm_config("tiny")), ckpt)
    assert wavlm_bench.main(["--preset", "tiny", "--pruned", str(ckpt), "--seconds", "1",
                             "--runs", "1"]) == 0
    result = _json(capsys)
    assert result["speedup"] > 0 and result["params_pruned"] == result["params_full"]
    for name in ("full", "pruned"):  # the per-model speed records of --checkpoint's schema
        assert result[name][SPEED_KEY] == pytest.approx(result[f"time_{name}_s"] / 1.0)
    cfg = uniform_structure(wavlm_config("base_plus"), 0.8)
    full = wavlm_config("base_plus")
    sparsity = 1 - count_params(cfg, structure_of_config(cfg)) / count_params(
        full, structure_of_config(full))
    assert abs(sparsity - 0.8) < 0.01


def test_bench_checkpoint_writes_the_speed_record_make_results_reads(tmp_path, capsys):
    """Recipe stage 8: ``wavlm_bench --checkpoint`` → exp/<model>/wavlm_bench.json, whose
    speed make_results turns into the speed-up column."""
    ckpt = tmp_path / "tiny.pt"
    save_wavlm(WavLM(wavlm_config("tiny")), ckpt)
    out = tmp_path / "exp" / "teacher" / "wavlm_bench.json"
    assert wavlm_bench.main(["--checkpoint", str(ckpt), "--seconds", "1", "--batch_size", "2",
                             "--runs", "3", "--threads", "1", "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record == _json(capsys)
    assert record["audio_seconds"] == 2.0 and len(record["times"]) == 3
    assert record["threads"] == 1 and record["checkpoint"] == str(ckpt)
    assert record[SPEED_KEY] == pytest.approx(sorted(record["times"])[1] / 2.0)
    assert measured_speed(out.parent) == record[SPEED_KEY]
