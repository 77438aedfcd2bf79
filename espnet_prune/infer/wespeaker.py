"""WeSpeaker ResNet34 speaker embeddings (VoxCeleb, "LM" fine-tuned), as used by the paper.

Reads a local copy of the checkpoint pyannote distributes as
``pyannote/wespeaker-voxceleb-resnet34-LM`` (``pytorch_model.bin``: a PyTorch Lightning
checkpoint whose ``state_dict`` holds ``resnet.*`` tensors), a bare state dict with the same
keys, or WeSpeaker's own ``avg_model.pt`` (same keys without ``resnet.``; its training head
``projection.*`` is ignored). Front end: Kaldi fbank of the waveform scaled to 16-bit range,
80 mel bins, 25 ms / 10 ms, Hamming window, no dither, no energy; mean removed over time.
Network: conv 3×3 (32) → ResNet34 basic blocks [3, 4, 6, 3] with 32/64/128/256 channels →
mean and unbiased standard deviation over time of the 256 × 10 map → Linear(5120 → 256).
Our own module rather than pyannote.audio's (its import cost: see
:mod:`espnet_prune.diar.powerset`); equal outputs: test/infer/test_wespeaker.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from espnet_prune.errors import CheckpointError, ConfigError
from espnet_prune.infer.speaker_embedding import SpeakerEmbedding

NUM_MEL_BINS = 80
FBANK_HOP, FBANK_LENGTH = 160, 400  # samples: 10 ms / 25 ms at 16 kHz
TRUNK_STRIDE = 8  # fbank frames per trunk output frame (time is halved three times)
# fbank frames of context on either side of a block of RecordingTrunk: the trunk's receptive
# field is 225 frames (±112), rounded up to a whole number of output frames
TRUNK_MARGIN = 128
BLOCKS_PER_STAGE = (3, 4, 6, 3)
BASE_CHANNELS = 32
EMBEDDING_DIM = 256
IGNORED_PREFIXES = ("projection.",)  # WeSpeaker's classification head (training only)
# modules whose pickled objects (metadata of pyannote's checkpoints) are read as inert stand-ins
INERT_PREFIXES = ("pyannote.",)


def weighted_stats(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weighted mean and unbiased weighted standard deviation over time of ``x [B, D, T']``.

    ``weights [B, T]`` (frame weights at the fbank rate) are resampled to ``T'`` by nearest
    neighbour, as pyannote.audio 4 does; the result is ``[B, 2D]``.
    """
    w = nn.functional.interpolate(weights[:, None].float(), size=x.shape[-1], mode="nearest")
    total = w.sum(-1) + 1e-8  # pyannote's epsilons: a one-frame mask gives std 0, not NaN
    mean = (x * w).sum(-1) / total
    var = (w * (x - mean[..., None]) ** 2).sum(-1) / (total - (w**2).sum(-1) / total + 1e-8)
    return torch.cat([mean, var.sqrt()], dim=-1)


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with batch norm; a 1×1 projection shortcut when the shape changes."""

    def __init__(self, in_channels: int, channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + self.shortcut(x))


class ResNet34Trunk(nn.Module):
    """fbank ``[B, T, 80]`` → embedding ``[B, 256]`` (module names follow the checkpoint)."""

    def __init__(self, feat_dim: int = NUM_MEL_BINS, embed_dim: int = EMBEDDING_DIM):
        super().__init__()
        self.conv1 = nn.Conv2d(1, BASE_CHANNELS, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(BASE_CHANNELS)
        in_channels = BASE_CHANNELS
        for stage, count in enumerate(BLOCKS_PER_STAGE):
            channels = BASE_CHANNELS * 2**stage
            blocks = []
            for index in range(count):
                stride = 2 if stage > 0 and index == 0 else 1
                blocks.append(BasicBlock(in_channels, channels, stride))
                in_channels = channels
            setattr(self, f"layer{stage + 1}", nn.Sequential(*blocks))
        pooled = (feat_dim // 8) * in_channels  # frequency axis is halved three times
        self.frame_dim = pooled
        self.seg_1 = nn.Linear(2 * pooled, embed_dim)

    def frame_features(self, fbank: torch.Tensor) -> torch.Tensor:
        """fbank ``[B, T, 80]`` → the map pooled over time, ``[B, C·F', T']``."""
        x = fbank.transpose(1, 2).unsqueeze(1)  # [B, 1, F, T]
        x = torch.relu(self.bn1(self.conv1(x)))
        for stage in range(len(BLOCKS_PER_STAGE)):
            x = getattr(self, f"layer{stage + 1}")(x)
        return x.flatten(1, 2)  # channel-major

    def pool(self, x: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """(Weighted) statistics pooling of ``frame_features`` and the embedding layer."""
        if weights is None:
            stats = torch.cat([x.mean(-1), x.std(-1, unbiased=True)], dim=-1)
        else:
            stats = weighted_stats(x, weights)
        return self.seg_1(stats)

    def forward(self, fbank: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        return self.pool(self.frame_features(fbank), weights)


class WeSpeakerResNet34(nn.Module):
    """Waveforms (16 kHz, [-1, 1]) → 256-d embeddings; parameters under ``resnet.``."""

    sample_rate = 16000

    def __init__(self):
        super().__init__()
        self.resnet = ResNet34Trunk()

    @staticmethod
    def raw_fbank(waveform: torch.Tensor) -> torch.Tensor:
        """``[T]`` → 80-dim log-mel fbank ``[frames, 80]`` (no mean removal); frame ``i``
        covers samples ``[160 i, 160 i + 400)`` and depends on nothing else."""
        from torchaudio.compliance import kaldi

        return kaldi.fbank(
            waveform[None].float() * 32768.0,
            num_mel_bins=NUM_MEL_BINS,
            frame_length=25.0,
            frame_shift=10.0,
            dither=0.0,
            sample_frequency=16000,
            window_type="hamming",
            use_energy=False,
        )

    @classmethod
    def fbank(cls, waveform: torch.Tensor) -> torch.Tensor:
        """``[T]`` → mean-normalised 80-dim log-mel fbank ``[frames, 80]``."""
        feats = cls.raw_fbank(waveform)
        return feats - feats.mean(0, keepdim=True)

    @classmethod
    def batch_fbank(cls, waveforms: torch.Tensor) -> torch.Tensor:
        """``[B, T]`` → ``[B, frames, 80]``, each row as :meth:`fbank` computes it.

        Each fbank frame depends on its own 400 samples only, so when ``T`` is a whole number
        of hops the rows are laid end to end and go through one fbank call (the frames that
        straddle two rows are dropped): one call instead of a Python loop of ``B``.
        """
        count, length = waveforms.shape
        if length % FBANK_HOP or length < FBANK_LENGTH:
            return torch.stack([cls.fbank(wav) for wav in waveforms])
        frames = (length - FBANK_LENGTH) // FBANK_HOP + 1
        feats = cls.raw_fbank(waveforms.reshape(-1))
        feats = torch.nn.functional.pad(feats, (0, 0, 0, count * length // FBANK_HOP - len(feats)))
        feats = feats.reshape(count, length // FBANK_HOP, -1)[:, :frames]
        return feats - feats.mean(1, keepdim=True)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        """One waveform ``[T]`` (≥ 25 ms) → ``[256]``."""
        return self.resnet(self.fbank(waveform)[None])[0]


def checkpoint_file(path: str | Path) -> Path:
    """A hub snapshot directory stands for its ``pytorch_model.bin``."""
    path = Path(path)
    return path / "pytorch_model.bin" if path.is_dir() else path


def read_wespeaker_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The ``resnet.*`` tensors of a pyannote/WeSpeaker ResNet34 checkpoint (file or hub dir)."""
    from espnet_prune.utils.checkpoint import read_checkpoint

    path = checkpoint_file(path)
    if not path.exists():
        raise CheckpointError(f"{path}: WeSpeaker checkpoint does not exist")
    # never a full unpickle: pyannote's Lightning checkpoints also pickle pyannote objects
    # (task specifications), which come back inert; anything else foreign is refused
    data = read_checkpoint(path, "WeSpeaker checkpoint", inert_prefixes=INERT_PREFIXES)
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if not isinstance(data, dict) or not data:
        raise CheckpointError(f"{path}: expected a state dict or a checkpoint with 'state_dict'")
    state = {}
    for key, value in data.items():
        if not isinstance(key, str) or key.startswith(IGNORED_PREFIXES):
            continue
        state[key if key.startswith("resnet.") else f"resnet.{key}"] = value
    return state


def load_wespeaker_resnet34(path: str | Path) -> WeSpeakerResNet34:
    """Strict load: a missing, unknown or wrong-shape key is a CheckpointError naming it."""
    from espnet_prune.utils.state_dict import load_state_dict_strict

    model = WeSpeakerResNet34()
    load_state_dict_strict(model, read_wespeaker_state_dict(path), checkpoint_file(path))
    return model.eval()


class RecordingTrunk:
    """The ResNet's frame features of a whole recording, computed block by block in order.

    One trunk pass per recording instead of one per window: with the paper's 0.8 s step every
    second of audio goes through the trunk once instead of ten times. Each block of
    ``block_frames`` output frames (one per 80 ms) is computed with :data:`TRUNK_MARGIN` fbank
    frames of real audio on either side (more than the trunk's receptive field), so its
    features equal one pass over the whole recording; only the blocks the windows in flight
    need are kept. Differences from the per-window reference: the convolutions see the
    neighbouring audio instead of zero padding at the window's edges, and fbank means are
    removed over a sliding ``cmn_frames`` span centred on each frame (0: no mean removal)
    instead of over the window.
    """

    def __init__(self, model: WeSpeakerResNet34, device, cmn_frames: int,
                 block_frames: int = 375):
        self.model, self.device = model, device
        self.cmn_frames, self.block_frames = int(cmn_frames), int(block_frames)
        self.reset(None)

    def reset(self, audio) -> None:
        self.audio, self.first, self.features = audio, 0, None  # features: [D, frames]

    def total_fbank_frames(self) -> int:
        samples = len(self.audio)
        return 0 if samples < FBANK_LENGTH else (samples - FBANK_LENGTH) // FBANK_HOP + 1

    def fbank(self, first: int, last: int) -> torch.Tensor:
        """Mean-normalised fbank frames ``[first, last)`` of the recording (within it)."""
        half = self.cmn_frames // 2
        lo = max(first - half, 0)
        hi = min(last + half, self.total_fbank_frames())
        samples = np.asarray(self.audio[lo * FBANK_HOP : (hi - 1) * FBANK_HOP + FBANK_LENGTH])
        wav = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)).to(self.device)
        feats = WeSpeakerResNet34.raw_fbank(wav)
        if self.cmn_frames > 0:
            sums = torch.nn.functional.pad(feats.double().cumsum(0), (0, 0, 1, 0))
            index = torch.arange(first, last, device=feats.device)
            left = (index - half).clamp(min=lo) - lo
            right = (index - half + self.cmn_frames).clamp(max=hi) - lo
            means = (sums[right] - sums[left]) / (right - left)[:, None]
            return (feats[first - lo : last - lo] - means.float()).contiguous()
        return feats[first - lo : last - lo]

    def compute(self, first: int, last: int) -> torch.Tensor:
        """Frame features ``[D, last - first]`` (output frames; zeros past the recording)."""
        total = self.total_fbank_frames()
        lo = max(first * TRUNK_STRIDE - TRUNK_MARGIN, 0)
        hi = min(last * TRUNK_STRIDE + TRUNK_MARGIN, total)
        out = torch.zeros(self.model.resnet.frame_dim, last - first, device=self.device)
        if hi <= lo:
            return out
        feats = self.model.resnet.frame_features(self.fbank(lo, hi)[None])[0]
        skip = first - lo // TRUNK_STRIDE
        kept = feats[:, skip : skip + last - first]
        out[:, : kept.shape[1]] = kept
        return out

    def window_features(self, audio, starts: np.ndarray, frames: int) -> torch.Tensor:
        """``[len(starts), D, frames]``: the features of the windows starting at ``starts``
        (samples, in increasing order over successive calls of one recording)."""
        offsets = np.rint(np.asarray(starts) / (FBANK_HOP * TRUNK_STRIDE)).astype(int)
        need_first, need_last = int(offsets.min()), int(offsets.max()) + frames
        if audio is not self.audio or self.features is None or need_first < self.first:
            self.reset(audio)
            self.first, self.features = need_first, self.compute(need_first, need_first)
        drop = need_first - self.first  # frames no window in flight needs any more
        self.features, self.first = self.features[:, drop:], need_first
        end = self.first + self.features.shape[1]
        if need_last > end:
            last = max(need_last, end + self.block_frames)
            self.features = torch.cat([self.features, self.compute(end, last)], dim=1)
        index = torch.from_numpy(offsets - self.first)[:, None] + torch.arange(frames)
        return self.features[:, index.to(self.features.device)].permute(1, 0, 2)


class WeSpeakerEmbedding(SpeakerEmbedding):
    """Pipeline extractor around :class:`WeSpeakerResNet34` (``checkpoint``: file or dir).

    ``trunk``: ``window`` (default, the reference: each window's fbank, mean removed over the
    window, through the trunk once, shared by its local speakers) or ``recording`` (the trunk
    runs once over the recording, block by block, and each window pools its slice of the
    frame features: :class:`RecordingTrunk`; fbank means removed over a sliding
    ``cmn_seconds`` span, 0 for none). Measured (``espnet_prune/measure/BENCHMARKS.md``,
    "Embedding stage"; random ResNet weights, mini_meeting test set, step 2 s): the embedding
    stage ≈ 6× cheaper at the paper's 0.8 s step; cosine to the reference's embedding of the
    same (window, speaker) median 0.999, 5 % below 0.994, minimum 0.89 (whole-recording CMN
    slightly further, none much further: median 0.84); DER unchanged there, but with random
    weights every mode put all embeddings into one cluster, so the DER effect is unmeasured.
    """

    dimension = EMBEDDING_DIM
    TRUNKS = ("window", "recording")

    @classmethod
    def check_conf(cls, conf: dict) -> None:
        if "checkpoint" not in conf:
            raise ConfigError(
                "speaker embedding 'wespeaker_resnet34' needs conf.checkpoint: a local copy of "
                "pyannote/wespeaker-voxceleb-resnet34-LM (its directory or pytorch_model.bin)"
            )
        if conf.get("trunk", "window") not in cls.TRUNKS:
            raise ConfigError(f"wespeaker_resnet34 conf.trunk must be one of {cls.TRUNKS}, "
                              f"got {conf['trunk']!r}")

    def __init__(self, checkpoint: str, device: str = "cpu", trunk: str = "window",
                 cmn_seconds: float = 8.0):
        self.check_conf({"checkpoint": checkpoint, "trunk": trunk})
        self.model = load_wespeaker_resnet34(checkpoint).to(device)
        self.device = device
        self.trunk = trunk
        self.cmn_seconds = cmn_seconds
        self.recording_trunk = None

    @property
    def needs_recording(self) -> bool:
        """Whether :meth:`embed_masked` wants the window starts and the recording."""
        return getattr(self, "trunk", "window") == "recording"

    def to(self, device: str) -> WeSpeakerEmbedding:
        self.model.to(device)
        self.device = device
        self.recording_trunk = None
        return self

    def embed_one(self, waveform: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            wav = torch.from_numpy(np.ascontiguousarray(waveform)).to(self.device)
            return self.model(wav).float().cpu().numpy()

    def embed_masked(self, windows: np.ndarray, rows: np.ndarray, masks: np.ndarray,
                     starts: np.ndarray | None = None, audio=None) -> np.ndarray:
        """The reference's embedding of a local speaker: the whole window ``windows[rows[i]]``
        goes through the ResNet, whose statistics pooling is weighted by ``masks[i]`` (frame
        weights over the window, any frame rate: resampled to the ResNet's by nearest
        neighbour). Each window's trunk runs once, shared by its speakers, and the windows
        of a call go through it as one batch. With ``trunk: recording`` the frame features
        come from :class:`RecordingTrunk` instead (``starts``: the windows' first samples in
        ``audio``, the recording)."""
        used, inverse = np.unique(np.asarray(rows), return_inverse=True)
        with torch.inference_mode():
            if self.needs_recording:
                if starts is None or audio is None:
                    raise ConfigError("trunk 'recording' needs the window starts and the audio")
                features = self.recording_features(windows.shape[1], np.asarray(starts)[used],
                                                   audio)
            else:
                wavs = torch.from_numpy(np.ascontiguousarray(windows[used])).to(self.device)
                features = self.model.resnet.frame_features(self.model.batch_fbank(wavs))
            weights = torch.from_numpy(np.ascontiguousarray(masks)).to(self.device)
            index = torch.from_numpy(inverse.reshape(-1)).to(features.device)
            out = self.model.resnet.pool(features[index], weights)
        return out.float().cpu().numpy()

    def recording_features(self, window: int, starts: np.ndarray, audio) -> torch.Tensor:
        if getattr(self, "recording_trunk", None) is None:
            cmn = int(round(self.cmn_seconds * self.sample_rate / FBANK_HOP))
            self.recording_trunk = RecordingTrunk(self.model, self.device, cmn)
        frames = (window - FBANK_LENGTH) // FBANK_HOP + 1
        for _ in range(3):  # the trunk's three stride-2 stages
            frames = (frames + 1) // 2
        return self.recording_trunk.window_features(audio, starts, frames)
