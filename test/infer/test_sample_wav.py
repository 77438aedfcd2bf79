"""Inference on pyannote's real sample.wav (30 s, 2 speakers) with the oracle segmentation and
the real resemblyzer embeddings, writing and re-reading RTTM files."""

import importlib.util
from pathlib import Path

import pytest

from espnet_prune.eval.scoring import score
from espnet_prune.infer.pipeline import DiarizationPipeline
from espnet_prune.infer.run import build_pipeline_parts, diarize_recordings
from espnet_prune.utils.audio import read_audio
from espnet_prune.utils.rttm import read_rttm

from .oracle import OracleSegmentation


def sample_dir():
    spec = importlib.util.find_spec("pyannote.audio")  # locates without importing it
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "sample"
    return folder if (folder / "sample.wav").is_file() else None


SAMPLE = sample_dir()


@pytest.mark.skipif(SAMPLE is None, reason="pyannote.audio's sample.wav is not installed")
def test_sample_wav_writes_valid_rttm(tmp_path):
    reference = read_rttm(SAMPLE / "sample.rttm")
    (rec,) = reference
    audio = read_audio(SAMPLE / "sample.wav")
    config, embedding, clustering = build_pipeline_parts(
        {"step": 4.0, "clustering": {"name": "ahc", "threshold": 0.7, "min_cluster_size": 30}},
        {"num_speakers": 2},
    )
    probe = DiarizationPipeline(None, None, 320, 400, None, None, config)
    oracle = OracleSegmentation(reference[rec], len(audio), probe.window_starts(len(audio))[2])
    pipeline = DiarizationPipeline(
        oracle, oracle.to_multilabel, 320, 400, embedding, clustering, config, progress=True
    )
    diarize_recordings(pipeline, {rec: str(SAMPLE / "sample.wav")}, tmp_path)
    combined = read_rttm(tmp_path / "rttm")
    single = read_rttm(tmp_path / "rttm_per_recording" / f"{rec}.rttm")
    assert combined == single and set(combined) == {rec}
    assert all(0 <= seg.start < seg.end <= len(audio) / 16000 + 0.05 for seg in combined[rec])
    uem = {rec: [(0.0, len(audio) / 16000)]}
    rates = score(reference, combined, uem=uem)["overall"]
    # oracle activity: misses/false alarms only from the frame grid and the count; confusion
    # depends on resemblyzer, a weak embedding for this recording (not asserted tightly)
    assert rates["miss"] + rates["false_alarm"] < 0.05, rates
    assert rates["confusion"] < 0.5, rates
    assert len({seg.speaker for seg in combined[rec]}) == 2
