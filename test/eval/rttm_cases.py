"""Random diarization cases (reference, hypothesis, UEM) for scorer comparisons."""

from __future__ import annotations

import numpy as np

from espnet_prune.utils.rttm import RttmSegment


def random_turns(rng, rec, speakers, duration, mean_turn=2.0, mean_gap=1.5):
    """Non-overlapping turns per speaker (speakers overlap each other), 10 ms grid."""
    turns = []
    for spk in speakers:
        t = float(rng.uniform(0, 3))
        while t < duration:
            length = float(rng.exponential(mean_turn)) + 0.05
            end = min(t + length, duration)
            start, end = round(t, 2), round(end, 2)
            if end > start:
                turns.append(RttmSegment(rec, start, round(end - start, 2), spk))
            t = end + float(rng.exponential(mean_gap * len(speakers))) + 0.05
    return turns


def perturb(rng, turns, label_map, shift=0.3, drop=0.1):
    """Hypothesis from a reference: jittered boundaries, dropped turns, relabelled speakers."""
    out = []
    for seg in turns:
        if rng.uniform() < drop:
            continue
        start = max(0.0, seg.start + float(rng.normal(0, shift)))
        end = seg.end + float(rng.normal(0, shift))
        if end - start > 0.02:
            speaker = label_map(seg.speaker)
            out.append(RttmSegment(seg.recording, round(start, 3), round(end - start, 3), speaker))
    return out


def make_cases(seed=0, num_recordings=6, duration=60.0):
    """Dicts ref, hyp, uem covering overlaps, missing/extra speakers and UEM gaps."""
    rng = np.random.default_rng(seed)
    ref, hyp, uem = {}, {}, {}
    for index in range(num_recordings):
        rec = f"rec{index}"
        num_spk = int(rng.integers(2, 5))
        speakers = [f"spk{k}" for k in range(num_spk)]
        ref[rec] = random_turns(rng, rec, speakers, duration)
        kind = index % 3
        if kind == 0:  # missing speaker: two reference speakers merged into one label
            mapping = {s: f"h{min(k, num_spk - 2)}" for k, s in enumerate(speakers)}
        elif kind == 1:  # extra speakers: one reference speaker split, plus a spurious one
            mapping = {s: f"h{k}" for k, s in enumerate(speakers)}
        else:  # confusion: labels swapped at random per turn
            mapping = None
        if mapping is None:
            hyp_turns = perturb(rng, ref[rec], lambda s, n=num_spk: f"h{int(rng.integers(0, n))}")
        elif kind == 1:
            hyp_turns = perturb(
                rng, ref[rec], lambda s, m=mapping: m[s] + ("x" if rng.uniform() < 0.3 else "")
            )
            hyp_turns += random_turns(rng, rec, ["spurious"], duration, mean_turn=0.8, mean_gap=8)
        else:
            hyp_turns = perturb(rng, ref[rec], lambda s, m=mapping: m[s])
        hyp[rec] = hyp_turns
        # UEM with gaps: two or three scored spans
        cuts = np.sort(rng.uniform(0, duration, size=4)).round(2)
        uem[rec] = [(0.0, float(cuts[0])), (float(cuts[1]), float(cuts[2]))]
        if index % 2:
            uem[rec].append((float(cuts[3]), duration))
    return ref, hyp, uem
