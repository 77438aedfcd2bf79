"""Generated meetings with a scripted segmentation whose windows disagree, for comparing our
pipeline with the reference's steps (test/infer/reference_pipeline.py) on the same input.

Each case: loud noise audio (no frame is under the silence floor), 2-8 speakers taking turns
with overlaps, and per 8 s window (0.8 s step) a local segmentation of the truth in which every
window moves each speaker's boundaries by its own -3..3 frames, shuffles the local slots and now
and then adds a short spurious speaker or drops a short turn. The windows therefore disagree and
the mean per-frame count is often not a whole number. Embeddings depend only on (window, frame
mask): the truth speaker the mask overlaps most, scaled by a random norm, plus noise; spurious
speakers get random directions (small clusters).
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from scipy.ndimage import median_filter

from espnet_prune.diar.powerset import Powerset

RATE = 16000
SHIFT, LENGTH = 320, 400
WINDOW, STEP = 8 * RATE, 12800
FRAMES = (WINDOW - LENGTH) // SHIFT + 1  # 399
DIM = 16


class ScriptedCase:
    def __init__(self, seed: int, num_speakers: int, duration: float):
        rng = np.random.default_rng(seed)
        self.seed, self.num_speakers = seed, num_speakers
        num_samples = int(duration * RATE) + int(rng.integers(0, SHIFT * 40))
        self.audio = (0.1 * rng.standard_normal(num_samples)).astype(np.float32)
        self.duration = num_samples / RATE
        # truth on a fine grid (5 ms), turns with overlaps, silent in the last 0.3 s
        fine = np.zeros((int(self.duration / 0.005), num_speakers), dtype=bool)
        # uneven shares of speech: some speakers are rare (small clusters, merged; windows
        # with more active speakers than clusters)
        weights = rng.dirichlet(np.full(num_speakers, 0.8))
        t = float(rng.uniform(0.0, 1.0))
        while t < self.duration - 1.0:
            speaker = int(rng.choice(num_speakers, p=weights))
            end = min(t + float(rng.uniform(0.6, 6.0)), self.duration - 0.3)
            fine[int(t / 0.005) : int(end / 0.005), speaker] = True
            t = end - float(rng.uniform(0.1, 1.0)) if rng.uniform() < 0.35 else \
                end + float(rng.uniform(0.0, 1.5))
        self.fine = fine
        self.starts = np.arange(1 + int(np.ceil(max(num_samples - WINDOW, 0) / STEP))) * STEP
        self.local = []  # per window: [FRAMES, 4] scripted activity
        self.identity = []  # per window: slot → truth speaker (or -1 - n: spurious n)
        spurious = 0
        for start in self.starts:
            middles = (start + SHIFT * np.arange(FRAMES) + LENGTH / 2) / RATE
            index = np.minimum((middles / 0.005).astype(int), len(fine) - 1)
            truth = fine[index] & (middles < self.duration - 0.3)[:, None]
            top = np.argsort(-truth.sum(0), kind="stable")[:4]
            top = [k for k in top if truth[:, k].any()]
            slots = rng.permutation(4)
            local = np.zeros((FRAMES, 4), dtype=bool)
            identity = [-100] * 4
            for k, slot in zip(top, slots):
                column = truth[:, k].copy()
                edges = np.flatnonzero(np.diff(np.concatenate([[0], column, [0]])))
                column[:] = False
                for on, off in zip(edges[0::2], edges[1::2]):
                    on = int(np.clip(on + rng.integers(-3, 4), 0, FRAMES))
                    off = int(np.clip(off + rng.integers(-3, 4), on, FRAMES))
                    if off - on > 30 and rng.uniform() < 0.03:
                        continue  # a missed short turn in this window
                    column[on:off] = True
                local[:, slot] = column
                identity[slot] = int(k)
            free = [s for s in slots[len(top):]]
            if free and rng.uniform() < 0.15:
                on = int(rng.integers(0, FRAMES - 60))
                local[on : on + int(rng.integers(20, 60)), free[0]] = True
                identity[free[0]] = -1 - spurious
                spurious += 1
            valid = (start + SHIFT * np.arange(FRAMES) + LENGTH) <= num_samples - 0.3 * RATE
            local &= valid[:, None]
            # the powerset allows 2 speakers per frame: the others are cut there
            for f in np.flatnonzero(local.sum(1) > 2):
                local[f, np.flatnonzero(local[f])[2:]] = False
            self.local.append(local)
            self.identity.append(identity)
        self._finish(rng, np.stack(self.local), spurious)

    @classmethod
    def from_windows(cls, local: np.ndarray, identity, num_samples: int, seed: int = 0):
        """A hand-made case: scripted activity ``[windows, FRAMES, 4]`` and the truth speaker
        of each (window, slot)."""
        case = cls.__new__(cls)
        rng = np.random.default_rng(seed)
        case.seed, case.num_speakers = seed, max(max(row) for row in identity) + 1
        case.audio = (0.1 * rng.standard_normal(num_samples)).astype(np.float32)
        case.duration = num_samples / RATE
        case.starts = np.arange(len(local)) * STEP
        case.identity = [list(row) for row in identity]
        case._finish(rng, np.asarray(local, dtype=bool), 0)
        return case

    def _finish(self, rng, local: np.ndarray, spurious: int):
        self.local = local
        self.lengths_seen = []
        # what both pipelines see after their 11-frame median filter
        self.filtered = median_filter(self.local.astype(np.uint8), size=(1, 11, 1),
                                      mode="reflect").astype(bool)
        powerset = Powerset(4, 2)
        classes = powerset.to_powerset(torch.from_numpy(self.local.astype(np.float32))).numpy()
        logits = rng.normal(size=(*classes.shape, powerset.num_classes)).astype(np.float32)
        np.put_along_axis(logits, classes[..., None], 6.0, axis=-1)
        self.log_probs = torch.log_softmax(torch.from_numpy(logits), -1).numpy()
        self.centres = rng.normal(size=(self.num_speakers, DIM))
        self.norms = rng.uniform(0.5, 3.0, size=(len(self.starts), 4))
        self.noise = 0.12 * rng.normal(size=(len(self.starts), 4, DIM))
        self.spurious = rng.normal(size=(max(spurious, 1), DIM))
        self._keys = {self._key(self.audio[s : s + 4096]): i for i, s in enumerate(self.starts)}

    @staticmethod
    def _key(samples) -> str:
        return hashlib.sha1(np.ascontiguousarray(samples[:4096], dtype=np.float32)).hexdigest()

    def window_index(self, window: np.ndarray) -> int:
        return self._keys[self._key(window)]

    def embed(self, window: int, mask: np.ndarray) -> np.ndarray:
        """The embedding of the local slot whose mask this is: the slot's median-filtered
        activity, or its frames without overlap (else the slot the mask overlaps most)."""
        given = np.asarray(mask, dtype=bool)[:FRAMES]
        mask = np.zeros(FRAMES, dtype=bool)
        mask[: len(given)] = given
        filtered = self.filtered[window]
        clean = filtered & (filtered.sum(1, keepdims=True) == 1)
        same = [s for s in range(4) if filtered[:, s].any() and (
            np.array_equal(mask, filtered[:, s]) or np.array_equal(mask, clean[:, s]))]
        if same:
            slot = same[0]
        else:
            slot = int(np.argmax((filtered & mask[:, None]).sum(0)))
        who = self.identity[window][slot]
        base = self.centres[who] if who >= 0 else self.spurious[-1 - who]
        return self.norms[window, slot] * (base / np.linalg.norm(base)
                                           + self.noise[window, slot])

    # the pipeline's callables
    def segmentation(self, batch, lengths):
        self.lengths_seen += [int(n) for n in lengths]
        return np.stack([self.log_probs[self.window_index(w)] for w in batch])

    def embed_masked(self, windows, rows, masks):
        return np.stack([self.embed(self.window_index(windows[r]), m)
                         for r, m in zip(rows, masks)])


def cases(count: int = 24, first_seed: int = 1000):
    """``count`` cases, 2-8 speakers, 40-110 s + 12 s per speaker (fixed seeds: case i has
    seed first_seed + i)."""
    for i in range(count):
        seed = first_seed + i
        rng = np.random.default_rng(seed)
        speakers = int(2 + i % 7)
        yield seed, speakers, float(rng.uniform(40.0, 110.0)) + 12.0 * speakers
