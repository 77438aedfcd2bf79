"""Shared fixtures: tiny audio files and Kaldi-style diarization data dirs made on the fly."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from diar_fixtures import make_diar_data_dir

os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture
def write_wav():
    """``write_wav(path, seconds=1.0, sr=16000, channels=1, data=None) -> Path``."""

    def _write(path, seconds=1.0, sr=16000, channels=1, data=None, seed=0):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if data is None:
            rng = np.random.default_rng(seed)
            data = 0.05 * rng.standard_normal((int(seconds * sr), channels)).astype(np.float32)
            if channels == 1:
                data = data[:, 0]
        sf.write(str(path), data, sr)
        return path

    return _write


@pytest.fixture
def tiny_data_dir(tmp_path) -> Path:
    """Two 6 s recordings with 2 speakers each (one overlap) as a Kaldi-style data dir."""
    return make_diar_data_dir(tmp_path / "data")


@pytest.fixture
def one_torch_thread():
    """Two threads on a shared 2-core machine make small models 10x slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pytest_terminal_summary(terminalreporter):
    """One visible line when the checks against the authors' code did not run (no
    ``DIARIZEN_REPO``; test/diarizen_reference.py), instead of skips lost among the others."""
    from diarizen_reference import DIARIZEN_COMMIT, ENV, NOT_RUN

    skipped = [report for report in terminalreporter.stats.get("skipped", [])
               if NOT_RUN in str(getattr(report, "longrepr", ""))]
    if skipped:
        terminalreporter.write_sep("!", f"{NOT_RUN} ({len(skipped)} tests): set {ENV} to a "
                                   f"DiariZen git checkout holding {DIARIZEN_COMMIT[:7]}",
                                   yellow=True, bold=True)
