"""A trained model's inference run: the inference YAML → pipeline parts → one RTTM per recording.

The library side of ``diar_inference`` (and of ``diar_ablation`` and the pipeline benchmark,
which build the same parts): the YAML holds the fields of
:class:`espnet_prune.infer.pipeline.InferenceConfig` plus ``embedding: {name, conf}`` (a name
in :data:`espnet_prune.infer.embeddings.EMBEDDINGS`) and ``clustering: {name: ahc|vbx, ...}``.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np

from espnet_prune.errors import ConfigError

# file paths an inference YAML may hold: (section, key inside it, or key inside its ``conf``)
CONFIG_FILE_KEYS = (("embedding", "conf", "checkpoint"), ("clustering", None, "plda"))

# the inference YAML a trained model's folder carries (stage 7 stores it, packs hold it)
INFERENCE_CONFIG_NAME = "inference.yaml"


def load_inference_config(path: str | None) -> dict:
    """The inference YAML as a mapping (``{}`` without one); a missing file, broken YAML or a
    value out of its rule (:mod:`espnet_prune.infer.config_schema`) is one line naming it. A
    relative file path inside it (speaker-embedding checkpoint, PLDA) is taken from the current
    directory when it exists there (the recipes' ``exp/...``), else from the YAML's own folder
    (a packed or moved model)."""
    if path is None:
        return {}
    from espnet_prune.infer.config_schema import check_inference_config
    from espnet_prune.utils.config_file import read_yaml_mapping

    conf = check_inference_config(read_yaml_mapping(path, "inference config", empty_ok=True),
                                  path)
    return resolve_config_files(conf, Path(path).parent)


def config_files(conf: dict) -> list[tuple[dict, str]]:
    """``(mapping, key)`` of every file path the inference mapping names."""
    found = []
    for section, sub, key in CONFIG_FILE_KEYS:
        holder = conf.get(section)
        if isinstance(holder, dict) and sub is not None:
            holder = holder.get(sub)
        if isinstance(holder, dict) and isinstance(holder.get(key), str):
            found.append((holder, key))
    return found


def resolve_config_files(conf: dict, base: Path) -> dict:
    """A copy of ``conf`` whose relative file paths missing from the current directory point
    into ``base`` when they exist there."""
    conf = copy.deepcopy(conf)
    for holder, key in config_files(conf):
        value = Path(holder[key]).expanduser()
        if not value.is_absolute() and not value.exists() and (base / value).exists():
            holder[key] = str(base / value)
    return conf


def default_inference_config(model_file: str, train_config: str | None) -> str | None:
    """The ``inference.yaml`` stored beside the model file (or its config.yaml), if any: a
    model's folder carries the inference settings it was scored with."""
    candidates = [Path(model_file).parent]
    if train_config is not None:
        candidates.append(Path(train_config).parent)
    for folder in candidates:
        if (folder / INFERENCE_CONFIG_NAME).is_file():
            return str(folder / INFERENCE_CONFIG_NAME)
    return None


def build_clustering(conf: dict):
    """AHC or VBx (with its PLDA file) from the YAML's ``clustering`` mapping."""
    from espnet_prune.infer.clustering import AgglomerativeClustering, VBxClustering

    conf = dict(conf)
    name = conf.pop("name", "ahc")
    if name == "ahc":
        return AgglomerativeClustering(**conf)
    if name == "vbx":
        from espnet_prune.infer.plda import Plda

        plda_path = conf.pop("plda", None)
        return VBxClustering(Plda.load(plda_path) if plda_path else None, **conf)
    raise ConfigError(f"unknown clustering {name!r} (ahc, vbx)")


def build_pipeline_parts(conf: dict, overrides: dict):
    """InferenceConfig, embedding extractor and clustering from the YAML mapping."""
    from espnet_prune.infer.embeddings import AHC_THRESHOLD, DEFAULT_EMBEDDING, build_embedding
    from espnet_prune.infer.pipeline import InferenceConfig

    conf = dict(conf)
    embedding_conf = conf.pop("embedding", {"name": DEFAULT_EMBEDDING})
    clustering_conf = conf.pop("clustering", None)
    if clustering_conf is None:  # AHC with the threshold that suits the embedding
        name = embedding_conf.get("name", DEFAULT_EMBEDDING)
        clustering_conf = {"name": "ahc"}
        if name in AHC_THRESHOLD:
            clustering_conf["threshold"] = AHC_THRESHOLD[name]
    known = {f.name for f in dataclasses.fields(InferenceConfig)}
    unknown = sorted(set(conf) - known)
    if unknown:
        raise ConfigError(f"unknown inference option(s) {', '.join(unknown)}; known: {known}")
    conf.update({k: v for k, v in overrides.items() if v is not None})
    config = InferenceConfig(**conf)
    embedding = build_embedding(
        embedding_conf.get("name", DEFAULT_EMBEDDING), **embedding_conf.get("conf", {})
    )
    return config, embedding, build_clustering(clustering_conf)


def model_segmentation(model, device: str):
    """Wrap ``model.predict`` as the pipeline's numpy-in, numpy-out segmentation callable."""
    import torch

    def segmentation(batch: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            speech = torch.from_numpy(batch).to(device)
            log_probs = model.predict(speech, torch.from_numpy(lengths).to(device))
        return log_probs.float().cpu().numpy()

    powerset = copy.deepcopy(model.powerset).cpu()

    def to_multilabel(log_probs: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return powerset.to_multilabel(torch.from_numpy(log_probs)).numpy()

    return segmentation, to_multilabel


def diarize_recordings(pipeline, wavs: dict[str, str], output_dir: str | Path) -> dict:
    """Run ``pipeline`` on every recording and write the RTTMs; returns segments per recording."""
    from espnet_prune.infer.pipeline import WavFileAudio
    from espnet_prune.utils.datadir import check_key
    from espnet_prune.utils.io import check_output_dir
    from espnet_prune.utils.rttm import write_rttm

    for rec in wavs:  # keys become file names: refuse '../x', 'a/b' before writing anything
        check_key(rec, "recording key")
    output_dir = Path(output_dir)
    per_recording = check_output_dir(output_dir / "rttm_per_recording")
    results = {}  # every RTTM is written atomically: complete or absent, never truncated
    for rec in sorted(wavs):
        audio = WavFileAudio(wavs[rec], sample_rate=pipeline.config.sample_rate)  # streamed
        results[rec] = pipeline(audio, rec)
        write_rttm(per_recording / f"{rec}.rttm", results[rec])
    write_rttm(output_dir / "rttm", [seg for segs in results.values() for seg in segs])
    return results


def load_model(train_config: str, model_file: str, device: str):
    """The trained model, read without unpickling and loaded strictly (ESPnet itself unpickles
    the file in full and ignores bad keys; see :mod:`espnet_prune.diar.model_file`), built
    from its config without ESPnet's task (:mod:`espnet_prune.diar.build`)."""
    from espnet_prune.diar.build import build_diarization_model
    from espnet_prune.diar.model_file import load_trained_model

    return load_trained_model(build_diarization_model, train_config, model_file, device)


def resolve_device(ngpu: int) -> str:
    """``cpu`` or ``cuda``; asking for a GPU that is not there is a ConfigError."""
    if ngpu == 0:
        return "cpu"
    import torch

    if not torch.cuda.is_available():
        raise ConfigError("--ngpu 1 given but no CUDA device is available")
    return "cuda"


def read_audio_list(wav_scp: str | None = None, audio: list[str] | None = None) -> dict:
    """Recording key -> audio path, from a wav.scp or from audio files (key: the file name
    without its suffix). An audio file given as a wav.scp (or the other way round) is one line
    saying which option takes it."""
    from espnet_prune.utils.datadir import check_key, read_scp

    if (wav_scp is None) == (not audio):
        raise ConfigError("give either --wav_scp (a 'key path' list) or --audio FILE...")
    if wav_scp is not None:
        if _is_audio_file(wav_scp):
            raise ConfigError(f"{wav_scp}: an audio file, not a wav.scp list; pass audio "
                              f"files with --audio {wav_scp}")
        wavs = read_scp(wav_scp)  # keys checked: they become file names
        if not wavs:
            raise ConfigError(f"{wav_scp}: no recordings listed")
        return wavs
    wavs = {}
    for path in audio:
        if Path(path).is_file() and not _is_audio_file(path):
            raise ConfigError(f"{path}: not an audio file soundfile can read (a wav.scp "
                              "list goes to --wav_scp)")
        key = Path(path).stem
        check_key(key, f"{path}: recording key")
        if key in wavs:
            raise ConfigError(f"{path}: two audio files named {key!r} (their RTTM files "
                              "would collide)")
        wavs[key] = path
    return wavs


def _is_audio_file(path: str) -> bool:
    import soundfile as sf

    try:
        sf.info(str(path))
    except Exception:  # soundfile raises several error types; a text file is one of them
        return False
    return True


def build_pipeline(model_file: str, train_config: str | None, inference_conf: dict,
                   counts: dict | None = None, device: str = "cpu", backend: str = "pytorch",
                   progress: bool = False):
    """The :class:`~espnet_prune.infer.pipeline.DiarizationPipeline` of a trained model (the
    one code path of ``diar_inference`` and :class:`espnet_prune.zoo.pretrained.Diarizer`):
    the PyTorch model (``train_config`` + ``model_file``) or the ONNX file ``model_file``
    (``backend="onnxruntime"``), with the inference mapping's windows, embedding and
    clustering; ``counts`` (num/min/max_speakers) override the mapping's."""
    from espnet_prune.infer.pipeline import DiarizationPipeline

    pipeline_config, embedding, clustering = build_pipeline_parts(inference_conf, counts or {})
    if backend == "onnxruntime":
        from espnet_prune.infer.export import OnnxSegmenter, check_train_config

        model = OnnxSegmenter(model_file)
        if train_config is not None:
            check_train_config(model, train_config)
        segmentation, to_multilabel = model.segmentation, model.to_multilabel
    else:
        model = load_model(train_config, model_file, device)
        segmentation, to_multilabel = model_segmentation(model, device)
    embedding = embedding.to(device)
    return DiarizationPipeline(
        segmentation, to_multilabel, model.frame_shift, model.frame_length, embedding,
        clustering, pipeline_config, progress=progress,
    )


def diarize(model_file: str, output_dir: str, wav_scp: str | None = None,
            audio: list[str] | None = None, train_config: str | None = None,
            config: str | None = None, ngpu: int = 0, num_speakers: int | None = None,
            min_speakers: int | None = None, max_speakers: int | None = None,
            no_progress: bool = False, backend: str = "pytorch") -> dict:
    """Diarize every recording of ``wav_scp`` (or the ``audio`` files) into ``output_dir``
    (``diar_inference``'s options: ``config`` is the inference YAML, by default the
    ``inference.yaml`` beside the model; the speaker counts override its own; ``backend``
    ``onnxruntime`` runs the ONNX file ``model_file`` instead of the PyTorch model); returns
    the segments per recording."""
    import sys

    from espnet_prune.infer.clustering import check_speaker_bounds
    from espnet_prune.utils.audio import check_audio
    from espnet_prune.utils.io import check_output_dir

    # everything a user can get wrong fails here, in seconds, before the model is loaded
    if backend not in ("pytorch", "onnxruntime"):
        raise ConfigError(f"unknown backend {backend!r} (pytorch, onnxruntime)")
    if backend == "pytorch" and train_config is None:
        raise ConfigError("--train_config is required with --backend pytorch")
    if backend == "onnxruntime" and ngpu != 0:
        raise ConfigError("--backend onnxruntime runs on CPU: use --ngpu 0")
    if config is None:
        config = default_inference_config(model_file, train_config)
        if config is not None:
            print(f"inference config: {config} (stored with the model)", file=sys.stderr)
    inference_conf = load_inference_config(config)
    counts = {"num_speakers": num_speakers, "min_speakers": min_speakers,
              "max_speakers": max_speakers}
    check_speaker_bounds(**{key: inference_conf.get(key) if value is None else value
                            for key, value in counts.items()})
    wavs = read_audio_list(wav_scp, audio)
    for path in wavs.values():
        check_audio(path, finite=True)  # NaN/inf too (float files are scanned, in blocks)
    check_output_dir(output_dir)  # a file, or not writable: one line, nothing written
    pipeline = build_pipeline(model_file, train_config, inference_conf, counts,
                              resolve_device(ngpu), backend, progress=not no_progress)
    return diarize_recordings(pipeline, wavs, output_dir)
