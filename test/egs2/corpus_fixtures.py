"""Miniature AMI / AISHELL-4 / AliMeeting corpora with the real layouts, names and formats.

A few seconds of audio per meeting; far-field arrays have 8 channels whose first channel
carries the speakers (other channels carry different noise), so a test can tell which
channel the data prep kept.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

SR = 16000
REPO = Path(__file__).resolve().parents[2]


def voice(num_samples: int, speaker: int, seed: int = 0) -> np.ndarray:
    """Harmonic signal with a speaker-dependent pitch."""
    t = np.arange(num_samples) / SR
    f0 = 100.0 + 40.0 * speaker
    sig = sum(np.sin(2 * np.pi * f0 * k * t + seed) / k for k in range(1, 5))
    return (0.08 * sig).astype(np.float32)


def meeting_audio(turns, seconds: float, seed: int = 0) -> np.ndarray:
    """Mono signal of ``[(start, end, speaker_index)]`` turns over low noise."""
    rng = np.random.default_rng(seed)
    audio = 0.003 * rng.standard_normal(int(seconds * SR)).astype(np.float32)
    for j, (start, end, spk) in enumerate(turns):
        a, b = int(start * SR), int(end * SR)
        audio[a:b] += voice(b - a, spk, seed + j)
    return audio


def array_audio(first_channel: np.ndarray, channels: int = 8, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    data = 0.02 * rng.standard_normal((first_channel.size, channels)).astype(np.float32)
    data[:, 0] = first_channel
    return data


def textgrid_text(tiers: dict[str, list[tuple[float, float, str]]], xmax: float,
                  tier_xmax: float | None = None) -> str:
    """Praat long text format; gaps between a tier's intervals become empty intervals."""
    lines = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "",
             "xmin = 0 ", f"xmax = {xmax} ", "tiers? <exists> ", f"size = {len(tiers)} ",
             "item []: "]
    for index, (name, intervals) in enumerate(tiers.items(), 1):
        end_of_tier = tier_xmax if tier_xmax is not None else xmax
        filled, cursor = [], 0.0
        for start, end, text in intervals:
            if start > cursor:
                filled.append((cursor, start, ""))
            filled.append((start, end, text))
            cursor = end
        if cursor < end_of_tier:
            filled.append((cursor, end_of_tier, ""))
        lines += [f"    item [{index}]:", '        class = "IntervalTier" ',
                  f'        name = "{name}" ', "        xmin = 0 ",
                  f"        xmax = {end_of_tier} ", f"        intervals: size = {len(filled)} "]
        for k, (start, end, text) in enumerate(filled, 1):
            lines += [f"        intervals [{k}]:", f"            xmin = {start} ",
                      f"            xmax = {end} ", f'            text = "{text}" ']
    return "\n".join(lines) + "\n"


def write_textgrid(path: Path, tiers, xmax: float, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textgrid_text(tiers, xmax, **kwargs), encoding="utf-8")
    return path


# Two speakers with one overlap, and a third joining late: 4 s per meeting.
DEFAULT_TURNS = [(0.2, 1.6, 0), (1.4, 2.6, 1), (2.8, 3.8, 2)]
SECONDS = 4.0


def tiers_of(turns, names) -> dict[str, list[tuple[float, float, str]]]:
    tiers: dict[str, list[tuple[float, float, str]]] = {name: [] for name in names}
    for start, end, spk in turns:
        # two touching "words" per turn: the prep merges them into one turn
        middle = round((start + end) / 2, 3)
        tiers[names[spk]] += [(start, middle, "你好"), (middle, end, "会议")]
    return {name: spans for name, spans in tiers.items() if spans}


# ----------------------------------------------------------------------------- AISHELL-4

AISHELL4_SESSIONS = {
    "train_L": ["20200706_L_R001S01C01", "20200707_L_R001S02C01"],  # first is a dev session
    "train_M": ["20200616_M_R001S01C01", "20200617_M_R001S03C01"],  # first is a dev session
    "train_S": ["20200702_S_R001S02C01", "20200806_S_R001S02C01"],  # first is a dev session
    "test": ["L_R003S01C02", "M_R003S01C01", "S_R004S01C01"],
}
AISHELL4_DEV = ["20200706_L_R001S01C01", "20200616_M_R001S01C01", "20200702_S_R001S02C01"]


def build_aishell4(root: Path, turns=DEFAULT_TURNS) -> Path:
    """``root/{train_L,train_M,train_S,test}/{wav/*.flac, TextGrid/*.TextGrid}``."""
    for p, (part, sessions) in enumerate(AISHELL4_SESSIONS.items()):
        for s, session in enumerate(sessions):
            seed = 10 * p + s
            audio = array_audio(meeting_audio(turns, SECONDS, seed), seed=seed + 100)
            wav = root / part / "wav" / f"{session}.flac"
            wav.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(wav), audio, SR, format="FLAC")
            names = ["001-M", "002-F", "003-M"]
            write_textgrid(root / part / "TextGrid" / f"{session}.TextGrid",
                           tiers_of(turns, names), SECONDS)
    return root


# ----------------------------------------------------------------------------- AliMeeting

ALIMEETING_SESSIONS = {
    "Train_Ali_far": ["R0003_M0046_MS002", "R0004_M0012_MS005"],
    "Eval_Ali/Eval_Ali_far": ["R8001_M8004_MS801"],
    "Test_Ali/Test_Ali_far": ["R8002_M8002_MS802", "R8004_M8005_MS803"],
}


def build_alimeeting(root: Path, turns=DEFAULT_TURNS) -> Path:
    """``root/<part>/audio_dir/<room>_<meeting>_<mic>.wav`` (8 channels) and
    ``root/<part>/textgrid_dir/<room>_<meeting>.TextGrid``."""
    for p, (part, sessions) in enumerate(ALIMEETING_SESSIONS.items()):
        for s, session in enumerate(sessions):
            seed = 10 * p + s
            audio = array_audio(meeting_audio(turns, SECONDS, seed), seed=seed + 100)
            wav = root / part / "audio_dir" / f"{session}.wav"
            wav.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(wav), audio, SR)
            room, meeting = session.split("_")[:2]
            names = [f"{room}_{meeting}_F_SPK0{100 + k}" for k in range(3)]
            write_textgrid(root / part / "textgrid_dir" / f"{room}_{meeting}.TextGrid",
                           tiers_of(turns, names), SECONDS)
    return root


# ----------------------------------------------------------------------------- AMI

AMI_MEETINGS = {"train": ["IS1000a", "ES2002a", "EN2001a"], "dev": ["ES2011a"],
                "test": ["ES2004a", "TS3003a"]}


def build_ami(root: Path, turns=DEFAULT_TURNS, seconds: float = SECONDS) -> Path:
    """``root/amicorpus/<m>/audio/<m>.Array1-01.wav`` and ``root/AMI-diarization-setup``."""
    setup = root / "AMI-diarization-setup"
    for split, meetings in AMI_MEETINGS.items():
        (setup / "lists").mkdir(parents=True, exist_ok=True)
        (setup / "lists" / f"{split}.meetings.txt").write_text("\n".join(meetings) + "\n")
        for i, meeting in enumerate(meetings):
            wav = root / "amicorpus" / meeting / "audio" / f"{meeting}.Array1-01.wav"
            wav.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(wav), meeting_audio(turns, seconds, i), SR)
            rttm = setup / "only_words" / "rttms" / split / f"{meeting}.rttm"
            rttm.parent.mkdir(parents=True, exist_ok=True)
            rttm.write_text("".join(
                f"SPEAKER {meeting} 1 {a} {round(b - a, 3)} <NA> <NA> MEE{60 + spk:03d} <NA> <NA>\n"
                for a, b, spk in turns))
            uem = setup / "uems" / split / f"{meeting}.uem"
            uem.parent.mkdir(parents=True, exist_ok=True)
            uem.write_text(f"{meeting} 1 0.000 {seconds:.6f}\n")
    return root


# ----------------------------------------------------------------------------- running

def run_script(script: Path, *args, cwd: Path | None = None, env: dict | None = None,
               timeout: float = 600):
    """Run a recipe script (``.py`` with this interpreter, ``.sh`` with bash); capture output."""
    import os
    import subprocess
    import sys

    full_env = dict(os.environ)
    full_env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{full_env.get('PATH', '')}"
    full_env.update(env or {})
    command = [sys.executable] if str(script).endswith(".py") else ["bash"]
    return subprocess.run(
        [*command, str(script), *map(str, args)], cwd=cwd, env=full_env, capture_output=True,
        text=True, timeout=timeout,
    )


def validate(data_dir: Path, out_dir: Path) -> dict:
    """Stage 2 on a prepared dir, through the project's validate_data CLI entry point."""
    import json

    from espnet_prune.bin.validate_data import main as validate_main

    assert validate_main([str(data_dir), str(out_dir)]) == 0
    return json.loads((out_dir / "summary.json").read_text())
