"""ESPnet task: self-supervised pre-training of the prunable WavLM (HuBERT-style masked
prediction, :mod:`espnet_prune.ssl`) on a data dir of unlabelled recordings (``wav.scp``, no
RTTM), with the chunked data pipeline and trainer of the other tasks (resume, DDP, n-best
averaging).

Before the trainer starts, the k-means codebook of the targets is fitted once on the training
audio, by one process of a multi-process run (the others wait for it), and kept in
``<output_dir>/kmeans.npy`` (reused on resume).  After training, the export process (as for
pruning: rank 0, or node 0's parent) writes the WavLM of the averaged best checkpoints as
``<output_dir>/wavlm.pt``
(:func:`espnet_prune.wavlm.save_wavlm`): the same format as ``wavlm_convert``'s output, so it
is the ``frontend_conf.path`` of a diarization teacher and prunes the same way.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import torch
from espnet2.train.abs_espnet_model import AbsESPnetModel
from espnet2.utils.nested_dict_action import NestedDictAction
from espnet2.utils.types import int_or_none

from espnet_prune.diar.data import Chunk, make_chunks
from espnet_prune.errors import CheckpointError, ConfigError
from espnet_prune.prune.model import is_export_process
from espnet_prune.ssl.model import MaskedPredictionModel
from espnet_prune.ssl.targets import (
    KMeansQuantizer,
    MfccFeatures,
    WavLMLayerFeatures,
    fit_kmeans,
)
from espnet_prune.tasks.chunked import ChunkedDataTask, data_dir_of
from espnet_prune.utils.audio import read_audio
from espnet_prune.utils.datadir import DataDir, validate_data_dir
from espnet_prune.utils.io import atomic_path
from espnet_prune.utils.state_dict import load_state_dict_strict
from espnet_prune.wavlm.checkpoint import load_wavlm, read_checkpoint, save_wavlm
from espnet_prune.wavlm.model import WavLM

MODEL_CONF_DEFAULTS = {"mask_start_prob": 0.08, "mask_length": 10, "final_dim": None,
                       "utterance_mix_prob": 0.0}
KMEANS_FILE = "kmeans.npy"
WAVLM_FILE = "wavlm.pt"

_validated: dict[tuple[str, int], DataDir] = {}


def load_audio_dir(path, sample_rate: int) -> DataDir:
    """A validated data dir of recordings; an RTTM is not needed (and not read)."""
    key = (str(Path(path).resolve()), sample_rate)
    if key not in _validated:
        _validated[key] = validate_data_dir(path, sample_rate=sample_rate, require_rttm=False)
    return _validated[key]


class AudioChunkDataset(torch.utils.data.Dataset):
    """``dataset[key] -> (key, {"speech": float32 [T]})``: chunks of whole recordings."""

    def __init__(self, data: DataDir, chunk_size: float, chunk_shift: float,
                 sample_rate: int = 16000):
        self.data, self.sample_rate = data, sample_rate
        self.chunks: dict[str, Chunk] = {c.key: c for c in make_chunks(data, chunk_size,
                                                                       chunk_shift)}

    @property
    def keys(self) -> list[str]:
        return list(self.chunks)

    def __len__(self) -> int:
        return len(self.chunks)

    def has_name(self, name: str) -> bool:
        return name == "speech"

    def names(self) -> tuple[str, ...]:
        return ("speech",)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.data.path}, chunks={len(self)})"

    def __getitem__(self, key: str):
        chunk = self.chunks[key]
        first = round(chunk.start * self.sample_rate)
        last = round(chunk.end * self.sample_rate)
        speech = read_audio(self.data.wavs[chunk.recording], self.sample_rate,
                            first / self.sample_rate, last / self.sample_rate)
        if speech.shape[0] < last - first:
            speech = np.pad(speech, (0, last - first - speech.shape[0]))
        return key, {"speech": speech}


class WavLMPretrainModel(MaskedPredictionModel, AbsESPnetModel):
    """:class:`MaskedPredictionModel` as ESPnet's trainer wants it (gatherable outputs)."""

    def forward(self, speech, speech_lengths=None, **kwargs):
        from espnet2.torch_utils.device_funcs import force_gatherable

        loss, stats, weight = super().forward(speech, speech_lengths)
        return force_gatherable((loss, stats, weight), loss.device)

    def collect_feats(self, speech, speech_lengths=None, **kwargs):
        return {}


def model_conf_with_defaults(model_conf: dict | None) -> dict:
    conf = dict(MODEL_CONF_DEFAULTS)
    unknown = set(model_conf or {}) - set(conf)
    if unknown:
        raise ConfigError(f"unknown model_conf keys {sorted(unknown)}; known: {sorted(conf)}")
    conf.update(model_conf or {})
    return conf


def target_features(args: argparse.Namespace) -> torch.nn.Module:
    """MFCC (first iteration) or a layer of ``--target_wavlm`` (second iteration)."""
    if args.target_features == "mfcc":
        return MfccFeatures(args.sample_rate)
    if not args.target_wavlm:
        raise ConfigError("--target_features wavlm needs --target_wavlm (an earlier "
                          "pre-trained WavLM checkpoint)")
    wavlm = load_wavlm(args.target_wavlm)
    layer = wavlm.config.num_layers if args.target_layer is None else args.target_layer
    return WavLMLayerFeatures(wavlm, layer)


def kmeans_path(args: argparse.Namespace) -> Path:
    return Path(args.kmeans_path) if args.kmeans_path else Path(args.output_dir) / KMEANS_FILE


def fit_target_codebook(args: argparse.Namespace) -> Path:
    """Fit the k-means codebook on (up to ``--kmeans_max_seconds`` of) the training audio,
    unless its file exists; 8 s pieces without overlap, recordings in a seeded order."""
    path = kmeans_path(args)
    if path.is_file():
        logging.info("k-means codebook: %s exists, reused", path)
        return path
    data = load_audio_dir(data_dir_of(args.train_data_path_and_name_and_type, "train"),
                          args.sample_rate)
    pieces = AudioChunkDataset(data, 8.0, 8.0, args.sample_rate)
    keys = pieces.keys
    order = np.random.RandomState(args.seed).permutation(len(keys))
    features = target_features(args)
    rows, seconds = [], 0.0
    for index in order:
        if seconds >= args.kmeans_max_seconds:
            break
        _, item = pieces[keys[index]]
        wav = torch.from_numpy(item["speech"])[None]
        rows.append(features(wav).reshape(-1, features.dim).numpy())
        seconds += wav.shape[1] / args.sample_rate
    frames = np.concatenate(rows)
    logging.info("k-means: %d clusters of %d frames (%.0f s of audio, %s features)",
                 args.num_clusters, frames.shape[0], seconds, args.target_features)
    centroids = fit_kmeans(frames, args.num_clusters, seed=args.seed, n_init=args.kmeans_n_init)
    with atomic_path(path, make_parents=True) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, centroids, allow_pickle=False)
    return path


def fits_the_codebook(args: argparse.Namespace) -> bool:
    """Before training: whether this process fits the codebook.  Exactly one does (the only
    process; the parent of node 0 when ESPnet spawns the ranks; rank 0 of an external launch
    such as ``espnet2.bin.launch`` or torchrun, where every rank runs ``main``): k-means run
    in several processes could give ranks different targets for the same frames."""
    import copy

    from espnet2.train.distributed_utils import get_node_rank, get_rank, resolve_distributed_mode

    mode = copy.copy(args)  # ESPnet resolves the mode again on the real args
    resolve_distributed_mode(mode)
    if not mode.distributed:
        return True
    if mode.multiprocessing_distributed:
        return (get_node_rank(mode.dist_rank, mode.dist_launcher) or 0) == 0
    return (get_rank(mode.dist_rank, mode.dist_launcher) or 0) == 0


def wait_for_codebook(args: argparse.Namespace, timeout: float = 3600.0,
                      poll: float = 1.0) -> Path:
    """The other processes wait until the fitting process has written the codebook (it is
    written by an atomic rename, so a file that exists is whole)."""
    import time

    path = kmeans_path(args)
    deadline = time.monotonic() + timeout
    if not path.is_file():
        logging.info("k-means codebook: waiting for %s (fitted by rank 0)", path)
    while not path.is_file():
        if time.monotonic() > deadline:
            raise CheckpointError(f"{path}: the k-means codebook did not appear within "
                                  f"{timeout:.0f} s (rank 0 fits it; did it fail?)")
        time.sleep(poll)
    return path


def read_codebook(path: Path) -> np.ndarray:
    try:
        centroids = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: cannot read the k-means codebook ({exc})") from None
    if centroids.ndim != 2:
        raise CheckpointError(f"{path}: k-means codebook must be 2-D, got {centroids.shape}")
    return centroids


def export_wavlm(output_dir: Path, model_file: Path | None = None) -> Path:
    """Write the WavLM of ``model_file`` (default: the averaged best checkpoints) as
    ``<output_dir>/wavlm.pt``; its structure is read from ``<output_dir>/config.yaml``'s
    ``--init_wavlm`` checkpoint's config, as pre-training never changes it."""
    import yaml

    output_dir = Path(output_dir)
    model_file = model_file or output_dir / "valid.loss.ave.pth"
    with open(output_dir / "config.yaml", encoding="utf-8") as f:
        config = yaml.safe_load(f)
    wavlm = load_wavlm(config["init_wavlm"])
    state = read_checkpoint(model_file, "pre-trained model")
    prefix = "wavlm."
    load_state_dict_strict(wavlm, {k[len(prefix):]: v for k, v in state.items()
                                   if k.startswith(prefix)}, str(model_file))
    target = output_dir / WAVLM_FILE
    save_wavlm(wavlm, target)
    logging.info("pre-trained WavLM written to %s", target)
    return target


class WavLMPretrainTask(ChunkedDataTask):
    """Masked-prediction pre-training of the WavLM given by ``--init_wavlm``."""

    @classmethod
    def add_model_arguments(cls, group) -> None:
        group.add_argument("--init_wavlm", type=str, default=None,
                           help="WavLM checkpoint to pre-train (wavlm_convert or a random "
                           "init of a preset); required")
        group.add_argument("--model_conf", action=NestedDictAction,
                           default=dict(MODEL_CONF_DEFAULTS),
                           help="mask_start_prob (HuBERT's p, the share of frames that start "
                           "a span: 0.08), mask_length (HuBERT: 10), final_dim (None: "
                           "min(256, embed_dim)), utterance_mix_prob (WavLM: 0.2; 0: off)")
        group.add_argument("--cnn_grad_scale", type=float, default=0.1,
                           help="Gradient multiplier into the CNN (HuBERT/WavLM: 0.1)")
        group.add_argument("--target_features", choices=("mfcc", "wavlm"), default="mfcc",
                           help="mfcc: first iteration; wavlm: hidden states of --target_wavlm")
        group.add_argument("--target_wavlm", type=str, default=None,
                           help="Earlier pre-trained WavLM whose features are clustered")
        group.add_argument("--target_layer", type=int_or_none, default=None,
                           help="Its hidden state clustered (None: the last)")
        group.add_argument("--num_clusters", type=int, default=100, help="k-means clusters")
        group.add_argument("--kmeans_max_seconds", type=float, default=3600.0,
                           help="Training audio the k-means is fitted on (s)")
        group.add_argument("--kmeans_n_init", type=int, default=20,
                           help="k-means restarts (fairseq: 20)")
        group.add_argument("--kmeans_path", type=str, default=None,
                           help="Codebook file (None: <output_dir>/kmeans.npy, fitted if "
                           "missing)")

    @classmethod
    def add_task_arguments(cls, parser: argparse.ArgumentParser):
        super().add_task_arguments(parser)
        parser.set_defaults(best_model_criterion=[("valid", "loss", "min")],
                            keep_nbest_models=[1])

    @classmethod
    def required_data_names(cls, train: bool = True, inference: bool = False):
        return ("speech",)

    @classmethod
    def build_chunk_dataset(cls, args: argparse.Namespace, mode: str) -> AudioChunkDataset:
        train = mode == "train"
        triples = (args.train_data_path_and_name_and_type if train
                   else args.valid_data_path_and_name_and_type)
        shift = args.chunk_shift if train else (args.valid_chunk_shift or args.chunk_size)
        data = load_audio_dir(data_dir_of(triples, mode), args.sample_rate)
        return AudioChunkDataset(data, args.chunk_size, shift, args.sample_rate)

    @classmethod
    def validate_data(cls, args: argparse.Namespace) -> None:
        for what in ("train", "valid"):
            triples = getattr(args, f"{what}_data_path_and_name_and_type")
            load_audio_dir(data_dir_of(triples, what), args.sample_rate)

    @classmethod
    def check_task_args(cls, args: argparse.Namespace) -> None:
        if not args.init_wavlm:
            raise ConfigError("--init_wavlm (the WavLM checkpoint to pre-train) is required")
        model_conf_with_defaults(args.model_conf)

    @classmethod
    def build_model(cls, args: argparse.Namespace) -> WavLMPretrainModel:
        cls.check_task_args(args)
        wavlm: WavLM = load_wavlm(args.init_wavlm)
        if wavlm.config.pruning_units:
            raise ConfigError(f"{args.init_wavlm}: a masked (gated) WavLM cannot be "
                              "pre-trained; prune it first or give the unpruned one")
        wavlm.train()
        wavlm.cnn_grad_scale = args.cnn_grad_scale
        quantizer = KMeansQuantizer(read_codebook(kmeans_path(args)))
        features = target_features(args)
        if quantizer.centroids.shape[1] != features.dim:
            raise CheckpointError(f"{kmeans_path(args)}: codebook of dimension "
                                  f"{quantizer.centroids.shape[1]}, the {args.target_features}"
                                  f" features have {features.dim}")
        return WavLMPretrainModel(wavlm, features, quantizer,
                                  **model_conf_with_defaults(args.model_conf))

    @classmethod
    def build_optimizers(cls, args: argparse.Namespace, model: torch.nn.Module):
        params = [p for p in model.parameters() if p.requires_grad]  # not the frozen targets
        return [cls.optimizer_class(args)(params, **args.optim_conf)]

    @classmethod
    def frame_geometry(cls, args: argparse.Namespace) -> tuple[int, int]:
        return 320, 400

    @classmethod
    def main(cls, args: argparse.Namespace | None = None, cmd=None):
        """Fit the codebook, train (ESPnet), export ``wavlm.pt``."""
        if args is None:
            args = cls.get_parser().parse_args(cmd)
        if args.print_config:
            return super().main(args=args)
        cls.check_task_args(args)
        logging.basicConfig(  # the codebook's messages, in ESPnet's format
            level=args.log_level,
            format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
        if fits_the_codebook(args):
            fit_target_codebook(args)
        else:
            wait_for_codebook(args)
        super().main(args=args)
        if not is_export_process(args):  # rank 0 (or node 0's parent) writes wavlm.pt
            return None
        return export_wavlm(Path(args.output_dir))
