"""Sliding-window EEND inference with global speaker clustering (the reference's steps and where
this differs: ``espnet_prune/FIDELITY.md``, Inference).

One streaming pass over the windows of a recording: segmentation (any callable mapping a batch
of windows to powerset log-probabilities) → hard powerset decision → local speaker activities →
median filter → per-frame speaker count and one embedding per active (window, local speaker)
from its single-speaker frames. Then clustering, reconstruction on the global frame grid and
binarisation with the speaker count. Memory is bounded by per-frame arrays (frames × speakers),
the embeddings, bit-packed local activities (windows × local speakers × frames / 8 bytes) and
the clustering (N²/2 distances for N clean embeddings; ``max_cluster_embeddings`` caps N).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import median_filter

from espnet_prune.errors import ConfigError, DataError
from espnet_prune.infer.clustering import assign, check_speaker_bounds, l2_normalize
from espnet_prune.utils.frames import num_frames
from espnet_prune.utils.rttm import RttmSegment

Segmentation = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass
class InferenceConfig:
    window: float = 8.0  # seconds
    step: float | None = None  # seconds; default: step_ratio × window
    step_ratio: float = 0.1  # the paper's 10 % of the window
    batch_size: int = 16  # windows per pipeline step (DiariZen's inference batch_size)
    # windows per forward of the segmentation model and of a whole-window embedding extractor:
    # each step's batch goes through them in slices of at most this many windows. Peak memory
    # grows with it (8 s windows of the pruned Base+ shape: ~45 MB per window in the WavLM,
    # ~80 MB in the ResNet34: DiariZen's 32 at once took a 60 s recording to 2.9 GB peak
    # RSS, 8 to 1.75 GB); the result does not depend on it. None: the whole step at once.
    forward_batch_size: int | None = 8
    median_filter: int = 11  # frames
    min_clean_fraction: float = 0.1  # below: embedding set aside, assigned after clustering
    min_duration_off: float = 0.0  # seconds; shorter gaps within a speaker are filled
    num_speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None
    sample_rate: int = 16000
    # AHC's distance matrix grows as N²: above this many clean embeddings an evenly spaced
    # subsample is clustered and every embedding is then assigned to the nearest centroid.
    # 0 (the default, the reference's): no limit; the memory and DER it changes on a long
    # recording: infer/BENCHMARKS.md, "Clustering subsample and frame times".
    max_cluster_embeddings: int = 0
    # time of global frame i in the RTTM: "middle" (the reference's: the middle of the
    # frame's receptive field, frame_length/2 + i·shift, 12.5 ms + 20 ms·i for WavLM; a run of
    # frames on..off-1 is written from the middle of frame on to the middle of frame off) or
    # "hop" (the frame's centred hop, (frame_length - shift)/2 + i·shift: 10 ms earlier, a
    # run starting at frame 0 starts at 0 s). Effect: infer/BENCHMARKS.md (as above).
    frame_times: str = "middle"
    # the last, partial window: zero-padded to the full window and given to the model as a
    # full window (the reference's), or given with its real length (False)
    pad_last_window: bool = True
    # frames whose RMS is below this level (dB re full scale) are never speech: digital
    # silence gives an empty result. None: no floor.
    silence_floor_db: float | None = -70.0

    def __post_init__(self):
        for name in ("batch_size", "forward_batch_size"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise ConfigError(f"inference option {name} must be a whole number >= 1, "
                                  f"got {value!r}")
        check_speaker_bounds(self.num_speakers, self.min_speakers, self.max_speakers)
        if self.frame_times not in ("middle", "hop"):
            raise ConfigError(f"inference option frame_times must be 'middle' or 'hop', got "
                              f"{self.frame_times!r}")
        if (isinstance(self.max_cluster_embeddings, bool)
                or not isinstance(self.max_cluster_embeddings, int)
                or self.max_cluster_embeddings < 0):
            raise ConfigError(f"inference option max_cluster_embeddings must be a whole number "
                              f">= 0 (0: no limit), got {self.max_cluster_embeddings!r}")

    @property
    def step_seconds(self) -> float:
        return self.step if self.step is not None else self.step_ratio * self.window


class WavFileAudio:
    """A checked 16-bit/float WAV (or any soundfile format) read by slices, so that long
    recordings are never held in memory as a whole; ``len()`` is the number of samples."""

    ndim = 1

    def __init__(self, path, sample_rate: int = 16000):
        from espnet_prune.utils.audio import check_audio

        self.path = str(path)
        self.num_samples = check_audio(path, sample_rate).num_samples

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, index: slice) -> np.ndarray:
        import soundfile as sf

        first, last, _ = index.indices(self.num_samples)
        if last <= first:
            return np.zeros(0, dtype=np.float32)
        try:
            data, _ = sf.read(self.path, start=first, stop=last, dtype="float32", always_2d=False)
        except Exception as exc:  # soundfile raises several error types
            raise DataError(f"{self.path}: cannot read audio ({exc})") from None
        return data


class DiarizationPipeline:
    """Glue between a segmentation callable, an embedding extractor and a clustering."""

    def __init__(
        self,
        segmentation: Segmentation,
        to_multilabel: Callable[[np.ndarray], np.ndarray],
        frame_shift: int,
        frame_length: int,
        embedding,
        clustering,
        config: InferenceConfig | None = None,
        progress: bool = False,
    ):
        self.segmentation = segmentation
        self.to_multilabel = to_multilabel
        self.frame_shift, self.frame_length = int(frame_shift), int(frame_length)
        self.embedding, self.clustering = embedding, clustering
        self.config = config or InferenceConfig()
        self.progress = progress

    def window_starts(self, num_samples: int) -> tuple[int, int, np.ndarray]:
        """Window length and step in samples (step on the frame grid) and the window starts."""
        cfg = self.config
        window = int(round(cfg.window * cfg.sample_rate))
        step = int(round(cfg.step_seconds * cfg.sample_rate / self.frame_shift)) * self.frame_shift
        if step <= 0 or step > window:
            raise DataError(f"window step {cfg.step_seconds} s must lie in (0, window]")
        count = 1 + int(np.ceil(max(num_samples - window, 0) / step))
        starts = np.arange(count) * step
        # a trailing window holding less than one model frame adds nothing (and would give
        # the model a zero-frame input): the window before it already reaches the audio's end
        while len(starts) > 1 and num_samples - starts[-1] < self.frame_length:
            starts = starts[:-1]
        return window, step, starts

    def frames_in(self, num_samples: int) -> int:
        """Model frames in ``num_samples`` samples (the frontends' count: whole frames only)."""
        return num_frames(num_samples, self.frame_shift, self.frame_length)

    def __call__(self, audio, recording: str = "rec") -> list[RttmSegment]:
        """``audio``: float samples ``[T]``, or a :class:`WavFileAudio` read window by window.
        Afterwards :attr:`speaker_embeddings` maps each speaker label to its centroid."""
        cfg = self.config
        self.speaker_embeddings: dict[str, np.ndarray] = {}
        if not isinstance(audio, WavFileAudio):
            audio = np.asarray(audio, dtype=np.float32)
            if audio.ndim != 1:
                raise DataError(
                    f"{recording}: expected mono audio [samples], got shape {audio.shape}"
                )
        if len(audio) < self.frame_length:
            raise DataError(
                f"{recording}: audio of {len(audio)} samples ({len(audio) / cfg.sample_rate:.4f}"
                f" s) is shorter than one model frame ({self.frame_length} samples, "
                f"{self.frame_length / cfg.sample_rate:.4f} s)"
            )
        window, step, starts = self.window_starts(len(audio))
        num_frames = int(np.ceil(len(audio) / self.frame_shift))
        if cfg.pad_last_window:  # the padded last window's frames count, as the reference's
            num_frames = max(num_frames, int(starts[-1]) // self.frame_shift
                             + self.frames_in(window))
        count_sum = np.zeros(num_frames, dtype=np.float32)
        coverage = np.zeros(num_frames, dtype=np.float32)
        packed, frames, embeddings, owners, clean = [], [], [], [], []

        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=len(starts), desc=recording, unit="win", leave=False)
        for first in range(0, len(starts), cfg.batch_size):
            batch_starts = starts[first : first + cfg.batch_size]
            span_start = int(batch_starts[0])
            span = np.asarray(audio[span_start : int(batch_starts[-1]) + window])
            batch = np.zeros((len(batch_starts), window), dtype=np.float32)
            lengths = np.zeros(len(batch_starts), dtype=np.int64)
            pieces = []
            for row, start in enumerate(batch_starts):
                piece = span[start - span_start : start - span_start + window]
                batch[row, : len(piece)] = piece
                if cfg.pad_last_window:
                    # the model sees the zero-padded full window (the reference's), and the
                    # silence floor its padded samples
                    piece = batch[row]
                lengths[row] = len(piece)
                pieces.append(piece)
            log_probs = self._segment(batch, lengths)
            activity = np.asarray(self.to_multilabel(log_probs)).astype(np.uint8)  # [B, F, K]
            if cfg.median_filter > 1:
                activity = median_filter(activity, size=(1, cfg.median_filter, 1), mode="reflect")
            requests = []  # (row, speaker mask): one embedding call per batch of windows
            for row, start in enumerate(batch_starts):
                requests += [(row, mask) for mask in self._accumulate(
                    pieces[row], first + row, int(start), int(lengths[row]), activity[row],
                    count_sum, coverage, packed, frames, owners, clean,
                )]
            if requests:
                embeddings.append(self._embed(batch, lengths, pieces, requests, batch_starts,
                                              audio))
            if bar is not None:
                bar.update(len(batch_starts))
        if bar is not None:
            bar.close()
        return self._reconstruct(
            recording, len(audio), starts // self.frame_shift, frames, count_sum, coverage,
            packed, embeddings, owners, clean,
        )

    def _slices(self, lengths: np.ndarray) -> list[slice]:
        """The step's windows in forwards of at most ``forward_batch_size`` (one more when a
        partial last window would be alone: a model returns frames up to the longest window
        of its input, so it shares a forward with a full window, as in the whole step)."""
        count = len(lengths)
        size = self.config.forward_batch_size or count
        parts = [[lo, min(lo + size, count)] for lo in range(0, count, size)]
        if len(parts) > 1 and parts[-1][1] - parts[-1][0] == 1 and lengths[-1] < lengths.max():
            parts[-1][1] = parts.pop()[1]  # the pop runs first: [-1] is the one before
        return [slice(lo, hi) for lo, hi in parts]

    def _segment(self, batch: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        return np.concatenate([
            np.asarray(self.segmentation(batch[part], lengths[part]))
            for part in self._slices(lengths)
        ])

    def _accumulate(
        self, piece, index, start, length, activity, count_sum, coverage, packed, frames, owners,
        clean,
    ) -> list[np.ndarray]:
        """Adds one window's counts and activities; returns one frame mask per active local
        speaker, the frames its embedding is pooled over.

        The window's valid frames are those the model computes from its real samples (a batch
        is trimmed to its longest window, so a partial window may come with fewer frames than
        a full one, or with padding frames): that number is stored with the window and is the
        one read back in :meth:`_reconstruct`.
        """
        offset = start // self.frame_shift
        valid = min(activity.shape[0], self.frames_in(length), len(count_sum) - offset)
        valid = max(valid, 0)
        activity = activity[:valid]
        activity = self._silence_gate(piece, activity)
        count_sum[offset : offset + valid] += activity.sum(1)
        coverage[offset : offset + valid] += 1
        packed.append(np.packbits(activity.T.astype(bool), axis=1))  # [K, ceil(F/8)]
        frames.append(valid)
        single = activity.sum(1) == 1
        masks = []
        for speaker in range(activity.shape[1]):
            active = activity[:, speaker].astype(bool)
            if not active.any():
                continue
            # the speaker's clean (single-speaker) frames; all its frames if it has none, as
            # pyannote's pipeline does with exclude_overlap
            own = active & single
            masks.append(own if own.any() else active)
            owners.append((index, speaker))
            clean.append(own.sum() >= self.config.min_clean_fraction * valid)
        return masks

    def _embed(self, batch: np.ndarray, lengths: np.ndarray, pieces: list[np.ndarray],
               requests, starts: np.ndarray, audio) -> np.ndarray:
        """Embeddings of (window row, frame mask) requests.

        An extractor with ``embed_masked(windows, rows, masks)`` (the WeSpeaker ResNet34) sees
        each whole, zero-padded window and pools its statistics with the speaker's frame mask
        as weights, as the reference pipeline (pyannote's) does; the masks are given over the
        full window's model frames. Any other extractor (``__call__(waveforms)``, e.g.
        resemblyzer, whose LSTM has no pooling layer to weight) gets the masked frames' samples
        spliced together: for a 0/1 mask that is the input-side equivalent of pooling over the
        selected frames. An extractor whose ``needs_recording`` is true (WeSpeaker with
        ``trunk: recording``) also gets the windows' ``starts`` (samples) and the ``audio``.
        """
        if hasattr(self.embedding, "embed_masked"):
            masks = np.zeros((len(requests), self.frames_in(batch.shape[1])), dtype=np.float32)
            for index, (_, mask) in enumerate(requests):
                masks[index, : len(mask)] = mask
            rows = np.array([row for row, _ in requests])
            if getattr(self.embedding, "needs_recording", False):
                # the recording's trunk is computed block by block: the whole step at once
                return np.asarray(self.embedding.embed_masked(batch, rows, masks, starts=starts,
                                                              audio=audio))
            out = []
            for part in self._slices(lengths):  # requests come in row order
                chosen = (rows >= part.start) & (rows < part.stop)
                if chosen.any():
                    out.append(np.asarray(self.embedding.embed_masked(
                        batch[part], rows[chosen] - part.start, masks[chosen])))
            return np.concatenate(out)
        waves = [self._samples(pieces[row], 0, mask) for row, mask in requests]
        return np.asarray(self.embedding(waves))

    def _silence_gate(self, piece: np.ndarray, activity: np.ndarray) -> np.ndarray:
        """Clears the activity of frames quieter than ``silence_floor_db`` (RMS re full scale).

        Speech is never below it in a real recording (a -70 dBFS floor is ~20 dB under the
        quietest far-field speech and over the noise of 16-bit dither); digital silence and
        padding are. Without it a model trained on speech-dense chunks may call silence speech.
        """
        floor = self.config.silence_floor_db
        if floor is None or len(activity) == 0:
            return activity
        squares = np.concatenate([[0.0], np.cumsum(np.square(piece, dtype=np.float64))])
        first = np.arange(len(activity)) * self.frame_shift
        energy = (squares[first + self.frame_length] - squares[first]) / self.frame_length
        loud = energy > 10.0 ** (floor / 10.0)
        return activity * loud[:, None].astype(activity.dtype)

    def _samples(self, audio: np.ndarray, start: int, frames: np.ndarray) -> np.ndarray:
        """Samples of the selected frames (each frame = its frame_shift hop, centred)."""
        centre = (self.frame_length - self.frame_shift) // 2
        edges = np.diff(np.concatenate([[0], frames.astype(np.int8), [0]]))
        pieces = []
        for on, off in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
            lo = start + centre + on * self.frame_shift
            hi = start + centre + off * self.frame_shift
            pieces.append(audio[lo:hi])
        return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)

    def _reconstruct(
        self, recording, num_samples, offsets, frames, count_sum, coverage, packed, embeddings,
        owners, clean,
    ) -> list[RttmSegment]:
        cfg = self.config
        if not owners:
            return []  # no speech anywhere: documented empty output
        x = np.concatenate(embeddings).astype(np.float64)
        clean = np.asarray(clean, dtype=bool)
        if clean.sum() < 2:
            clean[:] = True  # fewer than 2 clean enough: cluster what there is (the reference's)
        space = self.clustering.space(x)
        chosen = np.flatnonzero(clean)
        if cfg.max_cluster_embeddings and len(chosen) > cfg.max_cluster_embeddings:
            # AHC needs N²/2 distances: very long recordings cluster an even subsample
            picks = np.linspace(0, len(chosen) - 1, cfg.max_cluster_embeddings)
            chosen = chosen[np.unique(np.round(picks).astype(int))]
        centroids = self.clustering.centroids(
            x[chosen], cfg.num_speakers, cfg.min_speakers, cfg.max_speakers
        )
        windows = np.array([owner[0] for owner in owners])
        labels = assign(space, centroids, groups=windows)
        required = cfg.num_speakers or cfg.min_speakers
        if required:
            labels = self._use_every_centroid(space, centroids, labels)
        for k in range(len(centroids)):  # mean of the speaker's embeddings, clean ones first
            mine = labels == k
            if (mine & clean).any():
                mine &= clean
            if mine.any():
                self.speaker_embeddings[f"spk{k}"] = x[mine].mean(0).astype(np.float32)

        num_frames = len(count_sum)
        covered = np.maximum(coverage, 1)
        count = np.rint(count_sum / covered).astype(int)
        cap = cfg.num_speakers or cfg.max_speakers
        if cap:
            count = np.minimum(count, cap)  # as the reference caps it at max_speakers
        # a frame may count more speakers than there are centroids: extra columns without
        # activity, which the binarisation fills as the reference's to_diarization does
        columns = max(len(centroids), int(count.max(initial=0)))
        score = np.zeros((num_frames, columns), dtype=np.float32)
        for (window, speaker), label in zip(owners, labels):
            if label < 0:
                continue  # a window's extra speaker without a centroid of its own: dropped
            valid = frames[window]
            bits = np.unpackbits(packed[window][speaker], count=valid)
            offset = int(offsets[window])
            score[offset : offset + valid, label] += bits
        score /= covered[:, None]
        # binarise: the `count` most active global speakers of each frame, as the reference
        # (pyannote fork pipelines/utils/diarization.py 233-238): a speaker without activity
        # in a frame is activated there when fewer speakers are active than counted (a
        # window's speaker dropped by the assignment, or one cluster for two local speakers).
        # Ties go to the lower index (a stable sort; the reference's default sort on an
        # AVX-512 CPU breaks ties in no fixed order)
        order = np.argsort(-score, axis=1, kind="stable")
        rank = np.empty_like(order)
        rank[np.arange(num_frames)[:, None], order] = np.arange(columns)[None, :]
        active = rank < count[:, None]
        if required:
            active = self._keep_requested_speakers(active, score, min(required, len(centroids)))
        return self._segments(recording, active, num_samples)

    @staticmethod
    def _use_every_centroid(space, centroids, labels) -> np.ndarray:
        """With a requested speaker count, no centroid may end up without an embedding after
        the (re-)assignment: an empty one takes the embedding most similar to it among those
        whose centroid keeps another (the window constraint holds: nothing else is on it)."""
        labels = labels.copy()
        similarity = l2_normalize(space) @ l2_normalize(centroids).T
        for k in range(len(centroids)):
            if (labels == k).any():
                continue
            sizes = np.bincount(labels[labels >= 0], minlength=len(centroids))
            movable = (labels >= 0) & (sizes[np.maximum(labels, 0)] > 1)
            if movable.any():
                candidates = np.flatnonzero(movable)
                labels[candidates[np.argmax(similarity[candidates, k])]] = k
        return labels

    @staticmethod
    def _keep_requested_speakers(active, score, required: int) -> np.ndarray:
        """A requested speaker that the clustering kept is not binarised away: while fewer
        than ``required`` speakers have frames, the silent speaker with the most activity is
        made active where its own score is highest (it loses every frame to others only
        through the top-``count`` ranking, e.g. with few windows per frame)."""
        active = active.copy()
        while active.any(0).sum() < required:
            silent = np.flatnonzero(~active.any(0) & (score.max(0) > 0))
            if len(silent) == 0:
                break
            k = silent[np.argmax(score[:, silent].sum(0))]
            active[:, k] |= score[:, k] >= score[:, k].max()
        return active

    def _segments(self, recording: str, active: np.ndarray, num_samples: int) -> list[RttmSegment]:
        rate = self.config.sample_rate
        duration = num_samples / rate
        hop = self.frame_shift / rate
        middle = self.config.frame_times == "middle"
        if middle:  # pyannote's SlidingWindow(start=0, duration=length, step=shift).middle
            centre = self.frame_length / 2 / rate
        else:
            centre = (self.frame_length - self.frame_shift) / 2 / rate
        gap = int(round(self.config.min_duration_off / hop))
        segments = []
        for speaker in range(active.shape[1]):
            edges = np.diff(np.concatenate([[0], active[:, speaker].astype(np.int8), [0]]))
            ons, offs = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
            merged: list[list[int]] = []
            for on, off in zip(ons, offs):
                if merged and on - merged[-1][1] <= gap:
                    merged[-1][1] = off
                else:
                    merged.append([on, off])
            for on, off in merged:
                start = centre + on * hop if (on > 0 or middle) else 0.0
                end = min(centre + off * hop, duration)
                start, end = round(start, 3), int(end * 1000) / 1000  # never past the audio
                if end <= start:
                    continue
                segments.append(
                    RttmSegment(recording, start, round(end - start, 3), f"spk{speaker}")
                )
        return sorted(segments, key=lambda s: (s.start, s.speaker))
