"""Builders of tiny diarization data dirs, importable from any test directory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


def synth_speaker_signal(num_samples: int, speaker: int, sr: int = 16000, seed: int = 0):
    """A voiced-like signal whose pitch/timbre depends on ``speaker`` (distinct per speaker)."""
    rng = np.random.default_rng(seed)
    t = np.arange(num_samples) / sr
    f0 = 110.0 + 45.0 * speaker
    sig = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
    sig = sig * (0.6 + 0.4 * np.sin(2 * np.pi * (2.0 + speaker) * t) ** 2)
    return (0.1 * sig + 0.005 * rng.standard_normal(t.size)).astype(np.float32)


def make_diar_data_dir(
    root: Path,
    recordings: dict[str, list[tuple[float, float, int]]] | None = None,
    duration: float = 6.0,
    sr: int = 16000,
    seed: int = 0,
) -> Path:
    """Write ``wav.scp``, ``rttm``, ``uem`` for recordings given as ``[(start, end, speaker)]``."""
    if recordings is None:
        recordings = {
            "rec1": [(0.2, 2.5, 0), (2.0, 4.0, 1), (4.5, 5.8, 0)],
            "rec2": [(0.0, 3.0, 2), (3.2, 5.5, 1)],
        }
    root.mkdir(parents=True, exist_ok=True)
    wav_dir = root / "wav"
    wav_dir.mkdir(exist_ok=True)
    scp, rttm, uem = [], [], []
    for i, (rec, turns) in enumerate(sorted(recordings.items())):
        audio = 0.002 * np.random.default_rng(seed + i).standard_normal(int(duration * sr))
        audio = audio.astype(np.float32)
        for j, (start, end, spk) in enumerate(turns):
            a, b = int(start * sr), int(end * sr)
            audio[a:b] += synth_speaker_signal(b - a, spk, sr, seed + 10 * i + j)
            rttm.append(
                f"SPEAKER {rec} 1 {start:.3f} {end - start:.3f} <NA> <NA> spk{spk} <NA> <NA>"
            )
        path = wav_dir / f"{rec}.wav"
        sf.write(str(path), audio, sr)
        scp.append(f"{rec} {path}")
        uem.append(f"{rec} 1 0.000 {duration:.3f}")
    (root / "wav.scp").write_text("\n".join(scp) + "\n")
    (root / "rttm").write_text("\n".join(rttm) + "\n")
    (root / "uem").write_text("\n".join(uem) + "\n")
    return root


def run_module(args, cwd, timeout=900):
    """``python -m ARGS`` in ``cwd`` on one thread; asserts success (stderr tail on failure)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def cli_error(capsys, main, argv) -> str:
    """Run a CLI like ``python -m``; assert exit 2, one ``error:`` line on stderr and no
    traceback; return the line."""
    import pytest

    from espnet_prune.utils.cli import run_main

    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        run_main(main, [str(a) for a in argv])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]
