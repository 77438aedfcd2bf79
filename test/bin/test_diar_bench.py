"""diar_bench on tiny shapes and a few seconds of audio: the JSON fields and their sense."""

import json

from espnet_prune.bin import diar_bench


def test_tiny_bench_reports_rtf_and_peak_rss(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert diar_bench.main(
        ["--preset", "tiny", "--duration", "12", "--memory_duration", "10", "--step", "2.0",
         "--threads", "1", "--json", str(out)]
    ) == 0
    results = json.loads(out.read_text())
    assert "RTF" in capsys.readouterr().out  # the table
    assert results["config"]["step"] == 2.0 and results["config"]["duration"] == 12.0
    unpruned, pruned = results["rtf"]["unpruned"], results["rtf"]["pruned"]
    assert pruned["params"] < unpruned["params"]
    assert pruned["macs_per_second"] < unpruned["macs_per_second"]
    for r in (unpruned, pruned):
        assert r["windows"] == 3  # starts 0, 2, 4 s: the last one ends at 12 s
        assert r["audio_seconds"] == 12.0
        assert r["rtf"] > 0 and abs(r["rtf"] - r["wall_seconds"] / 12.0) < 1e-3
        assert r["segmentation_seconds"] > 0 and r["embedding_seconds"] > 0
        assert r["speakers_found"] >= 1
    memory = results["memory"]
    assert memory["audio_seconds"] == 10.0 and memory["wavlm"] == "tiny_pruned"
    assert 50 < memory["peak_rss_mb"] < 4000
