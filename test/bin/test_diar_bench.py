"""diar_bench on tiny shapes and a few seconds of audio: the JSON fields and their sense."""

import json

import numpy as np

from espnet_prune.bin import diar_bench


def test_tiny_bench_reports_rtf_and_peak_rss(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert diar_bench.main(
        ["--preset", "tiny", "--duration", "12", "--memory_duration", "10", "--step", "2.0",
         "--threads", "1", "--memory_model", "pruned_int8", "--json", str(out)]
    ) == 0
    results = json.loads(out.read_text())
    assert "RTF" in capsys.readouterr().out  # the table
    assert results["config"]["step"] == 2.0 and results["config"]["duration"] == 12.0
    assert list(results["rtf"]) == ["unpruned", "pruned", "pruned_onnx", "pruned_int8"]
    unpruned, pruned = results["rtf"]["unpruned"], results["rtf"]["pruned"]
    assert pruned["params"] < unpruned["params"]
    for exported in ("pruned_onnx", "pruned_int8"):  # the pruned model, run by onnxruntime
        assert results["rtf"][exported]["params"] == pruned["params"]
        assert results["rtf"][exported]["windows"] == pruned["windows"]
    assert pruned["macs_per_second"] < unpruned["macs_per_second"]
    for r in results["rtf"].values():
        assert r["windows"] == 3  # starts 0, 2, 4 s: the last one ends at 12 s
        assert r["audio_seconds"] == 12.0
        assert r["rtf"] > 0 and abs(r["rtf"] - r["wall_seconds"] / 12.0) < 1e-3
        assert r["segmentation_seconds"] > 0 and r["embedding_seconds"] > 0
        assert r["clustering_seconds"] > 0 and r["other_seconds"] > 0
        parts = ("segmentation", "embedding", "clustering", "other")
        assert abs(sum(r[f"{p}_seconds"] for p in parts) - r["wall_seconds"]) < 0.01
        assert abs(sum(r[f"{p}_percent"] for p in parts) - 100) < 0.5
        assert abs(r["embedding_percent"] - 100 * r["embedding_seconds"] / r["wall_seconds"]) < 1
        assert r["speakers_found"] >= 1
    memory = results["memory"]
    assert memory["audio_seconds"] == 10.0 and memory["wavlm"] == "tiny_pruned"
    assert memory["model"] == "pruned_int8"

    assert 50 < memory["peak_rss_mb"] < 4000


def test_resnet_embedding_and_a_passed_in_segmentation_are_timed(tmp_path):
    """--embedding wespeaker_resnet34 (random weights, both trunks); run_pipeline times the
    segmentation callable it is given instead of the PyTorch model's."""
    from espnet_prune.measure import bench

    for trunk in ("window", "recording"):
        out = tmp_path / f"{trunk}.json"
        assert diar_bench.main(
            ["--preset", "tiny", "--models", "pruned", "--duration", "12", "--memory_duration",
             "0", "--step", "2.0", "--threads", "1", "--embedding", "wespeaker_resnet34",
             "--trunk", trunk, "--json", str(out)]) == 0
        results = json.loads(out.read_text())
        assert results["config"]["embedding"] == "wespeaker_resnet34"
        assert results["config"]["trunk"] == trunk
        assert results["rtf"]["pruned"]["embedding_seconds"] > 0

    model = bench.build_model("tiny_pruned", bench.PRESETS["tiny"][1])
    audio, turns = bench.synthetic_recording(12.0)
    calls = []

    def segmentation(batch, lengths):
        calls.append(batch.shape)
        frames = (batch.shape[1] - model.frame_length) // model.frame_shift + 1
        return np.zeros((len(batch), frames, model.powerset.num_classes), np.float32)

    result = bench.run_pipeline(model, audio, turns, 8.0, 2.0, 2, segmentation=segmentation)
    assert len(calls) == 2 and calls[0] == (2, 8 * 16000)  # 3 windows in batches of 2
    assert result["windows"] == 3 and result["segmentation_seconds"] >= 0
