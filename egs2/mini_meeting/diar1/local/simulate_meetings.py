#!/usr/bin/env python3
"""Make the mini_meeting corpus: simulated meetings from synthetic espeak-ng voices.

Everything is generated locally and deterministically (fixed seed, fixed order of synthesis
calls in one process), so the recipe needs no download. Speakers are espeak-ng voice variants
with their own language/pitch/range/rate; the variant sets of train, dev and test are disjoint.
The real two-speaker ``sample.wav`` of the pyannote-audio wheel is added as test set ``sample``.
With ``--num_pretrain N``, N more meetings of the train voices (drawn after everything else
with their own seed, so the other sets do not change) form the unlabelled set ``pretrain``
(``wav.scp`` only) for self-supervised pre-training, and ``--num_pretrain_valid`` more its
held-out set ``pretrain_valid``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from espeak_synth import EspeakSynthesizer, list_voice_variants  # this script's directory

SAMPLE_RATE = 16000
LANGUAGES = ["en", "en-us", "de", "fr", "es", "it", "nl", "sv", "pl", "pt"]
WORDS = (
    "the budget meeting project report data model plan team result quarter review design "
    "customer market product price cost time week month year today tomorrow morning evening "
    "question answer problem idea point issue option decision change update schedule task "
    "remote control button screen battery colour shape case material rubber plastic wood "
    "we you they should could would think know agree want need like make take give find "
    "really maybe probably certainly actually basically simply quickly very quite rather "
    "good bad big small new old first last next other same different important simple "
    "and but so because if when then also just only still already again here there now "
    "about after before between during under over with without into onto from across "
    "one two three four five six seven eight nine ten hundred thousand percent number"
).split()


@dataclass(frozen=True)
class Speaker:
    name: str
    voice: str
    pitch: int
    pitch_range: int
    rate: int


def split_variants(variants: list[str], seed: int, num_dev: int, num_test: int):
    """Disjoint variant sets for train/dev/test (shuffled with ``seed``)."""
    if num_dev + num_test >= len(variants):
        raise ValueError(f"only {len(variants)} voice variants for {num_dev} dev + {num_test} test")
    order = np.random.default_rng(seed).permutation(len(variants))
    shuffled = [variants[i] for i in order]
    return {
        "test": sorted(shuffled[:num_test]),
        "dev": sorted(shuffled[num_test : num_test + num_dev]),
        "train": sorted(shuffled[num_test + num_dev :]),
    }


def make_speakers(split: str, variants: list[str], rng: np.random.Generator) -> list[Speaker]:
    speakers = []
    for variant in variants:
        language = LANGUAGES[rng.integers(len(LANGUAGES))]
        speakers.append(
            Speaker(
                name=f"{split}_{variant.replace(' ', '')}",
                voice=f"{language}+{variant}",
                pitch=int(rng.integers(20, 81)),
                pitch_range=int(rng.integers(20, 90)),
                rate=int(rng.integers(140, 211)),
            )
        )
    return speakers


def trim_silence(audio: np.ndarray, threshold_db: float = -40.0, frame: int = 160) -> np.ndarray:
    """Cut leading/trailing frames quieter than ``threshold_db`` below the loudest frame."""
    num_frames = len(audio) // frame
    if num_frames == 0:
        return audio
    energy = (audio[: num_frames * frame].reshape(num_frames, frame) ** 2).mean(axis=1)
    level = 10 * np.log10(energy + 1e-12)
    voiced = np.flatnonzero(level > level.max() + threshold_db)
    return audio[voiced[0] * frame : (voiced[-1] + 1) * frame]


def synthesize_utterance(synth, speaker: Speaker, rng: np.random.Generator) -> np.ndarray:
    words = rng.choice(WORDS, size=int(rng.integers(3, 15)))
    audio = synth.synthesize(
        " ".join(words), speaker.voice, speaker.pitch, speaker.pitch_range, speaker.rate
    )
    return trim_silence(audio)


def overlap_ratio(segments: list[tuple[float, float, int]]) -> float:
    """Overlapped speech duration / total speech duration (union of all speakers)."""
    events = sorted([(s, 1) for s, _, _ in segments] + [(e, -1) for _, e, _ in segments])
    active, last, speech, overlap = 0, 0.0, 0.0, 0.0
    for time, delta in events:
        if active >= 1:
            speech += time - last
        if active >= 2:
            overlap += time - last
        active += delta
        last = time
    return overlap / speech if speech > 0 else 0.0


def layout(lengths, turn_speakers, duration, rng, overlap_prob):
    """Start times for utterances in order; at most two speakers at once, never a self-overlap.

    Returns the placed (start, end, utterance index) list.
    """
    placed = []
    time_cursor = float(rng.uniform(0.3, 1.5))
    prev_end, end_before_prev = 0.0, 0.0
    for index, length in enumerate(lengths):
        can_overlap = placed and turn_speakers[placed[-1][2]] != turn_speakers[index]
        if can_overlap and rng.random() < overlap_prob:
            prev_length = placed[-1][1] - placed[-1][0]
            depth = rng.uniform(0.3, max(0.35, min(2.5, 0.7 * prev_length, 0.7 * length)))
            start = max(prev_end - depth, end_before_prev + 0.05, placed[-1][0] + 0.2)
        else:
            start = time_cursor + float(rng.uniform(0.1, 1.2))
        end = start + length
        if end > duration - 0.2:
            break
        placed.append((start, end, index))
        end_before_prev, prev_end = prev_end, max(prev_end, end)
        time_cursor = prev_end
    return placed


def simulate_meeting(synth, speakers, rng, min_duration, max_duration, noise, overlap_range,
                     num_samples=None):
    num_speakers = int(rng.integers(2, min(4, len(speakers)) + 1))
    chosen = [speakers[i] for i in rng.choice(len(speakers), size=num_speakers, replace=False)]
    duration = float(rng.uniform(min_duration, max_duration))
    if num_samples is not None:  # an exact length (the draw above keeps the rng sequence)
        duration = num_samples / SAMPLE_RATE
    gains_db = rng.uniform(-9.0, 0.0, size=num_speakers)

    # synthesise enough turns first; the layout is redrawn (no new synthesis) until the
    # overlap ratio lands in ``overlap_range``
    turn_speakers, utterances, total = [], [], 0.0
    while total < 1.3 * duration:
        if turn_speakers and rng.random() < 0.85:
            others = [k for k in range(num_speakers) if k != turn_speakers[-1]]
            speaker_index = int(others[rng.integers(len(others))])
        else:
            speaker_index = int(rng.integers(num_speakers))
        audio = synthesize_utterance(synth, chosen[speaker_index], rng)
        gain = 10 ** ((gains_db[speaker_index] + rng.uniform(-2.0, 2.0)) / 20)
        utterances.append(audio * gain)
        turn_speakers.append(speaker_index)
        total += len(audio) / SAMPLE_RATE
    lengths = [len(u) / SAMPLE_RATE for u in utterances]

    target = 0.5 * (overlap_range[0] + overlap_range[1])
    best, best_gap = None, np.inf
    for _ in range(200):
        placed = layout(lengths, turn_speakers, duration, rng, overlap_prob=rng.uniform(0.1, 0.5))
        segments = [(s, e, turn_speakers[i]) for s, e, i in placed]
        speakers_present = {k for _, _, k in segments}
        if len(speakers_present) != num_speakers:
            continue
        ratio = overlap_ratio(segments)
        if abs(ratio - target) < best_gap:
            best, best_gap = placed, abs(ratio - target)
        if overlap_range[0] <= ratio <= overlap_range[1]:
            break
    if best is None:
        raise RuntimeError("could not lay out a meeting with every speaker present")

    mix = np.zeros(int(round(duration * SAMPLE_RATE)), dtype=np.float64)
    segments = []
    for start, _, index in best:
        offset = int(round(start * SAMPLE_RATE))
        audio = utterances[index][: len(mix) - offset]
        mix[offset : offset + len(audio)] += audio
        segments.append((offset / SAMPLE_RATE, len(audio) / SAMPLE_RATE, turn_speakers[index]))
    if noise:
        speech_power = np.mean(np.concatenate([utterances[i] for _, _, i in best]) ** 2)
        snr_db = rng.uniform(15.0, 30.0)
        mix += rng.normal(0.0, np.sqrt(speech_power / 10 ** (snr_db / 10)), size=len(mix))
    mix *= 0.9 / max(np.abs(mix).max(), 1e-9)
    return mix.astype(np.float32), segments, chosen, duration


def write_unlabelled_split(out_dir: Path, wav_dir: Path, recordings):
    """Audio and ``wav.scp`` only: no RTTM/UEM exists to be used by mistake."""
    out_dir.mkdir(parents=True, exist_ok=True)
    wav_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "wav.scp", "w") as scp:
        for rec_id, audio, _, _ in recordings:
            path = (wav_dir / f"{rec_id}.wav").resolve()
            sf.write(path, audio, SAMPLE_RATE, subtype="PCM_16")
            scp.write(f"{rec_id} {path}\n")


def write_split(out_dir: Path, wav_dir: Path, recordings):
    out_dir.mkdir(parents=True, exist_ok=True)
    wav_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "wav.scp", "w") as scp, open(out_dir / "rttm", "w") as rttm, open(
        out_dir / "uem", "w"
    ) as uem:
        for rec_id, audio, segments, speakers in recordings:
            path = (wav_dir / f"{rec_id}.wav").resolve()
            sf.write(path, audio, SAMPLE_RATE, subtype="PCM_16")
            scp.write(f"{rec_id} {path}\n")
            for start, dur, speaker_index in sorted(segments):
                name = speakers[speaker_index].name
                rttm.write(
                    f"SPEAKER {rec_id} 1 {start:.3f} {dur:.3f} <NA> <NA> {name} <NA> <NA>\n"
                )
            uem.write(f"{rec_id} 1 0.000 {len(audio) / SAMPLE_RATE:.3f}\n")


def pyannote_sample_dir() -> Path:
    """The pyannote-audio wheel's sample directory, found without importing pyannote.audio."""
    spec = importlib.util.find_spec("pyannote.audio")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("pyannote-audio is not installed: no sample.wav for test set")
    return Path(list(spec.submodule_search_locations)[0]) / "sample"


def write_sample_set(out_dir: Path):
    sample = pyannote_sample_dir()
    wav, rttm = sample / "sample.wav", sample / "sample.rttm"
    for path in (wav, rttm):
        if not path.is_file():
            raise FileNotFoundError(f"missing {path}")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "wav.scp").write_text(f"sample {wav.resolve()}\n")
    shutil.copyfile(rttm, out_dir / "rttm")
    duration = sf.info(str(wav)).duration
    (out_dir / "uem").write_text(f"sample 1 0.000 {duration:.3f}\n")


def get_parser():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data_dir", type=Path, default=Path("data"))
    parser.add_argument("--wav_dir", type=Path, default=Path("downloads/mini_meeting"))
    parser.add_argument("--num_train", type=int, default=40)
    parser.add_argument("--num_dev", type=int, default=4)
    parser.add_argument("--num_test", type=int, default=6)
    parser.add_argument("--dev_variants", type=int, default=12)
    parser.add_argument("--test_variants", type=int, default=16)
    parser.add_argument("--min_duration", type=float, default=30.0)
    parser.add_argument("--max_duration", type=float, default=90.0)
    parser.add_argument("--min_overlap", type=float, default=0.10)
    parser.add_argument("--max_overlap", type=float, default=0.20)
    parser.add_argument("--noise", type=lambda s: s.lower() in ("1", "true", "yes"), default=True)
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument(
        "--test_num_samples", type=int, nargs="*", default=[],
        help="exact lengths (samples) of the first test meetings, e.g. one whose last "
        "inference window is partial",
    )
    parser.add_argument("--no_sample", action="store_true", help="skip the pyannote sample set")
    parser.add_argument("--num_pretrain", type=int, default=0,
                        help="unlabelled meetings of the train voices (set 'pretrain')")
    parser.add_argument("--num_pretrain_valid", type=int, default=0,
                        help="held-out unlabelled meetings of the train voices "
                        "('pretrain_valid')")
    return parser


def main(argv=None):
    args = get_parser().parse_args(argv)
    if not 0 < args.min_duration <= args.max_duration:
        raise SystemExit(f"bad durations {args.min_duration}..{args.max_duration}")
    rng = np.random.default_rng(args.seed)
    variant_sets = split_variants(
        list_voice_variants(), args.seed, args.dev_variants, args.test_variants
    )
    synth = EspeakSynthesizer(SAMPLE_RATE)
    summary = {}
    for split, count in (("train", args.num_train), ("dev", args.num_dev), ("test", args.num_test)):
        speakers = make_speakers(split, variant_sets[split], rng)
        recordings, ratios, total = [], [], 0.0
        for index in range(count):
            audio, segments, chosen, duration = simulate_meeting(
                synth, speakers, rng, args.min_duration, args.max_duration, args.noise,
                (args.min_overlap, args.max_overlap),
                num_samples=args.test_num_samples[index]
                if split == "test" and index < len(args.test_num_samples) else None,
            )
            rec_id = f"mm_{split}_{index:03d}"
            recordings.append((rec_id, audio, segments, chosen))
            ratios.append(overlap_ratio([(s, s + d, k) for s, d, k in segments]))
            total += duration
        write_split(args.data_dir / split, args.wav_dir / split, recordings)
        summary[split] = {
            "recordings": count,
            "hours": round(total / 3600, 3),
            "speakers": [asdict(s) for s in speakers],
            "overlap_ratio": [round(r, 3) for r in ratios],
        }
        print(
            f"{split}: {count} meetings, {total / 60:.1f} min, overlap ratio "
            f"{np.mean(ratios) if ratios else 0:.3f}, {len(speakers)} voice variants",
            flush=True,
        )
    if args.num_pretrain or args.num_pretrain_valid:
        # its own generator: the labelled sets above are the same with or without it
        pretrain_rng = np.random.default_rng(args.seed + 1)
        train_speakers = [Speaker(**s) for s in summary["train"]["speakers"]]
        for split, count in (("pretrain", args.num_pretrain),
                             ("pretrain_valid", args.num_pretrain_valid)):
            recordings, total = [], 0.0
            for index in range(count):
                audio, segments, chosen, duration = simulate_meeting(
                    synth, train_speakers, pretrain_rng, args.min_duration,
                    args.max_duration, args.noise, (args.min_overlap, args.max_overlap))
                recordings.append((f"mm_{split}_{index:03d}", audio, segments, chosen))
                total += duration
            write_unlabelled_split(args.data_dir / split, args.wav_dir / split, recordings)
            summary[split] = {"recordings": count, "hours": round(total / 3600, 3),
                              "voices": "train", "labels": "none"}
            print(f"{split}: {count} unlabelled meetings, {total / 60:.1f} min, the train "
                  "voices", flush=True)
    if not args.no_sample:
        write_sample_set(args.data_dir / "sample")
    args.wav_dir.mkdir(parents=True, exist_ok=True)
    (args.wav_dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
