"""Use a trained model from Python: ``Diarizer.from_pretrained(source)(audio)`` → Annotation.

``source`` is any of the forms a model travels in:

- an exp dir (``config.yaml``, ``valid.loss.ave.pth`` or ``model.pth``, and the
  ``inference.yaml`` stage 7 stored beside them),
- an archive made by ``diar_pack`` (``.zip``/``.tar.gz``/``.tgz``: ESPnet's packed layout,
  ``meta.yaml`` naming the files; unpacked once into a cache folder by ESPnet's own unpacker),
- such an archive unpacked (or the Hugging Face repo folder the upload stage prepares),
- an ESPnet model tag or Hugging Face repo name, through ``espnet_model_zoo`` when installed.

The diarization itself is :func:`espnet_prune.infer.run.build_pipeline`'s pipeline, the one
``diar_inference`` runs: the API and the CLI give the same RTTM for the same audio.

Audio: a file path (any format soundfile reads; 16 kHz mono files are streamed window by
window), a file-like object, or a NumPy array / torch tensor with its ``sample_rate``. Audio
at another rate is resampled to the model's rate with torchaudio; several channels are
averaged. Audio of at least one model frame (25 ms) and shorter than one window is diarized as
one zero-padded window; shorter audio (one sample, an empty array) is a
:class:`~espnet_prune.errors.DataError` naming its length.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import os
from pathlib import Path

import numpy as np

from espnet_prune.errors import ConfigError, DataError

ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar")
# model files an exp dir may hold, in order of preference (the trainer's average first)
MODEL_FILE_NAMES = ("valid.loss.ave.pth", "model.pth", "valid.loss.best.pth")


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "espnet_prune" / "pretrained"


def folder_files(folder: Path) -> dict:
    """``train_config``, ``model_file`` and ``inference_config`` (or None) of a model folder:
    an unpacked archive (its ``meta.yaml`` names them) or an exp dir."""
    import yaml

    meta = folder / "meta.yaml"
    if meta.is_file():
        try:
            content = yaml.safe_load(meta.read_text(encoding="utf-8"))
            named = {**content["yaml_files"], **content["files"]}
        except (yaml.YAMLError, TypeError, KeyError, UnicodeDecodeError):
            raise ConfigError(f"{meta}: not a packed model's meta.yaml (yaml_files, files)"
                              ) from None
        files = {key: None if value is None else str(folder / value)
                 for key, value in named.items()}
        files.setdefault("inference_config", None)
    elif (folder / "config.yaml").is_file():
        found = [folder / name for name in MODEL_FILE_NAMES if (folder / name).is_file()]
        if not found:
            found = sorted(folder.glob("*.pth"))
        if len(found) == 0:
            raise ConfigError(f"{folder}: config.yaml but no model file "
                              f"({', '.join(MODEL_FILE_NAMES)})")
        inference = folder / "inference.yaml"
        files = {"train_config": str(folder / "config.yaml"), "model_file": str(found[0]),
                 "inference_config": str(inference) if inference.is_file() else None}
    else:
        raise ConfigError(f"{folder}: not a model folder (neither meta.yaml of a packed model "
                          "nor config.yaml of an exp dir)")
    for key in ("train_config", "model_file"):
        if key not in files or not Path(files[key]).is_file():
            raise ConfigError(f"{folder}: {key} {files.get(key)} is missing")
    return {key: files[key] for key in ("train_config", "model_file", "inference_config")}


def unpack_archive(archive: Path, cache_dir: Path | None = None) -> dict:
    """Unpack a ``diar_pack`` archive (once: a folder per archive content) with ESPnet's
    unpacker, which also points the packed YAML files at the unpacked copies."""
    from espnet2.main_funcs.pack_funcs import unpack

    stat = archive.stat()
    digest = hashlib.sha1(f"{archive.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    stem = archive.name.split(".")[0]
    target = Path(cache_dir or default_cache_dir()) / f"{stem}-{digest.hexdigest()[:12]}"
    try:
        unpack(archive, target)
    except Exception as exc:  # zipfile/tarfile/ESPnet raise several types for a bad archive
        raise ConfigError(f"{archive}: not a packed model archive ({exc})") from None
    return folder_files(target)


def model_zoo_files(tag: str, cache_dir: Path | None = None) -> dict:
    """A model tag (ESPnet model zoo name or Hugging Face repo) through espnet_model_zoo."""
    try:
        from espnet_model_zoo.downloader import ModelDownloader
    except ImportError:
        raise ConfigError(f"{tag!r} is no file or folder here; a model tag needs "
                          "espnet_model_zoo (pip install espnet_model_zoo)") from None
    files = ModelDownloader(cache_dir).download_and_unpack(tag)
    return {"train_config": files["train_config"], "model_file": files["model_file"],
            "inference_config": files.get("inference_config")}


def pretrained_files(source: str | os.PathLike, cache_dir: str | None = None) -> dict:
    """``train_config``, ``model_file``, ``inference_config`` of any model source (see the
    module docstring)."""
    path = Path(source).expanduser()
    if path.is_dir():
        return folder_files(path)
    if path.is_file():
        if path.name.endswith(ARCHIVE_SUFFIXES):
            return unpack_archive(path, cache_dir)
        raise ConfigError(f"{path}: not a model folder nor a packed archive "
                          f"({', '.join(ARCHIVE_SUFFIXES)})")
    if str(source).endswith(ARCHIVE_SUFFIXES) or str(source).startswith((".", "/", "~")):
        raise ConfigError(f"{source}: no such file or folder")
    return model_zoo_files(str(source), cache_dir)


def to_waveform(audio, sample_rate: int | None, target_rate: int):
    """The model-rate mono samples of ``audio`` (see the module docstring) and its name."""
    from espnet_prune.infer.pipeline import WavFileAudio

    if isinstance(audio, (str, os.PathLike)):
        import soundfile as sf

        from espnet_prune.utils.audio import audio_info

        info = audio_info(audio)  # a missing or unreadable file: one line naming it
        if sample_rate is not None and sample_rate != info.sample_rate:
            raise DataError(f"{audio}: the file is at {info.sample_rate} Hz, not the given "
                            f"sample_rate {sample_rate}")
        if info.sample_rate == target_rate and info.channels == 1:
            return WavFileAudio(audio, target_rate), Path(audio).stem  # streamed
        data, sample_rate = sf.read(str(audio), dtype="float32", always_2d=True)
        return _resampled(data.mean(1), sample_rate, target_rate), Path(audio).stem
    if hasattr(audio, "read"):  # a file-like object holding an audio file
        import soundfile as sf

        try:
            data, rate = sf.read(audio, dtype="float32", always_2d=True)
        except Exception as exc:  # soundfile raises several error types
            raise DataError(f"cannot read audio from the file object ({exc})") from None
        if sample_rate is not None and sample_rate != rate:
            raise DataError(f"the audio is at {rate} Hz, not the given sample_rate {sample_rate}")
        return _resampled(data.mean(1), rate, target_rate), None
    if hasattr(audio, "detach"):  # a torch tensor
        audio = audio.detach().cpu().numpy()
    if not isinstance(audio, np.ndarray):
        raise DataError(f"audio must be a file path, a file object, a NumPy array or a torch "
                        f"tensor, not {type(audio).__name__}")
    if sample_rate is None:
        raise ConfigError("a waveform needs its sample_rate (e.g. sample_rate=16000)")
    if audio.ndim == 2 and 1 in audio.shape:
        audio = audio.reshape(-1)
    if audio.ndim != 1:
        raise DataError(f"expected mono samples [T] (or [1, T]), got shape {audio.shape}")
    if np.issubdtype(audio.dtype, np.integer):  # PCM: full scale is 1.0
        audio = audio / float(np.iinfo(audio.dtype).max + 1)
    audio = np.asarray(audio, dtype=np.float32)
    if not np.isfinite(audio).all():
        raise DataError("audio holds NaN or infinite samples")
    return _resampled(audio, int(sample_rate), target_rate), None


def _resampled(samples: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    if rate == target_rate or len(samples) == 0:
        return samples
    import torch
    import torchaudio.functional

    return torchaudio.functional.resample(torch.from_numpy(samples), rate, target_rate).numpy()


class Diarizer:
    """A trained powerset EEND model with its inference settings, called on audio.

    >>> diarizer = Diarizer.from_pretrained("exp/packed/pruned.zip")
    >>> annotation = diarizer("meeting.wav", num_speakers=4)
    """

    def __init__(self, train_config: str, model_file: str, inference_config: str | None = None,
                 device: str = "cpu", backend: str | None = None, progress: bool = False):
        from espnet_prune.infer.run import build_pipeline, load_inference_config

        if backend is None:  # an ONNX file from diar_export runs in onnxruntime
            backend = "onnxruntime" if str(model_file).endswith(".onnx") else "pytorch"

        self.files = {"train_config": train_config, "model_file": model_file,
                      "inference_config": inference_config}
        self.pipeline = build_pipeline(model_file, train_config,
                                       load_inference_config(inference_config), {}, device,
                                       backend, progress)

    @classmethod
    def from_pretrained(cls, source: str | os.PathLike, device: str = "cpu",
                        inference_config: str | None = None, cache_dir: str | None = None,
                        progress: bool = False) -> Diarizer:
        """The model of an exp dir, a packed archive, its unpacked folder or a model tag, with
        the inference settings it carries (or ``inference_config``)."""
        files = pretrained_files(source, cache_dir)
        if inference_config is not None:
            files["inference_config"] = inference_config
        return cls(**files, device=device, progress=progress)

    @property
    def sample_rate(self) -> int:
        return self.pipeline.config.sample_rate

    def __call__(self, audio, sample_rate: int | None = None, num_speakers: int | None = None,
                 min_speakers: int | None = None, max_speakers: int | None = None,
                 return_embeddings: bool = False, uri: str | None = None):
        """A ``pyannote.core.Annotation`` of ``audio`` (write it with
        ``annotation.write_rttm(file)``); with ``return_embeddings`` also a dict speaker label
        -> its centroid embedding (mean of its clean local-speaker embeddings)."""
        from espnet_prune.utils.rttm import to_annotation

        counts = {"num_speakers": num_speakers, "min_speakers": min_speakers,
                  "max_speakers": max_speakers}
        pipeline = copy.copy(self.pipeline)  # the loaded model is shared; the config is not
        pipeline.config = dataclasses.replace(
            pipeline.config, **{key: value for key, value in counts.items() if value is not None}
        )
        waveform, name = to_waveform(audio, sample_rate, self.sample_rate)
        uri = uri or name or "audio"
        annotation = to_annotation(pipeline(waveform, uri), uri)
        if not return_embeddings:
            return annotation
        labels = set(annotation.labels())
        return annotation, {label: embedding
                            for label, embedding in pipeline.speaker_embeddings.items()
                            if label in labels}
