"""Diarization frontends (ESPnet ``AbsFrontend``): waveform ``[B, T]`` → features ``[B, F, D]``.

SSL frontends combine all L+1 hidden states with a bias-free ``Linear(L+1 → 1)`` (no softmax,
as in the reference recipe) and scale the gradient reaching the CNN feature extractor.  Each
frontend states its frame geometry in samples (``frame_shift``, ``frame_length``): a built one
on the instance, and from its ``frontend_conf`` alone (:meth:`DiarFrontend.frame_geometry`) so
the data pipeline can label chunks at the model's frame rate without building the model.

``FRONTENDS`` is the one registry of frontend names: the diarization task's ``--frontend``
choices are this very dict, the data pipeline looks names up in it, and
:func:`register_espnet_frontends` offers it to ESPnet's own diarization task.
"""

from __future__ import annotations

import inspect
import logging
import sys

import torch
from espnet2.asr.frontend.abs_frontend import AbsFrontend

from espnet_prune.errors import ConfigError
from espnet_prune.utils.frames import num_frames
from espnet_prune.wavlm.components import scale_grad
from espnet_prune.wavlm.config import WavLMConfig

logger = logging.getLogger(__name__)


class _GradScaleHook:
    """Forward hook: scales the gradient flowing back into a module (all its parameters)."""

    def __init__(self, scale: float):
        self.scale = scale

    def __call__(self, module, inputs, output):
        if self.scale == 1.0 or not torch.is_grad_enabled():
            return output
        if isinstance(output, torch.Tensor):
            return scale_grad(output, self.scale)
        if isinstance(output, tuple) and output and isinstance(output[0], torch.Tensor):
            return (scale_grad(output[0], self.scale), *output[1:])
        return output


class DiarFrontend(AbsFrontend):
    """Common interface: frame geometry in samples, upstream parameters.

    A frontend gives ``T`` samples ``num_frames(T, frame_shift, frame_length)`` frames
    (:mod:`espnet_prune.utils.frames`): the instance's ``frame_shift``/``frame_length`` say it
    for the model and inference, :meth:`frame_geometry` says it from the configuration for the
    data pipeline.
    """

    frame_shift: int
    frame_length: int

    @classmethod
    def frame_geometry(cls, **conf) -> tuple[int, int]:
        """(frame_shift, frame_length) in samples of the frontend ``cls(**conf)`` would be.

        By default the constructor's own ``frame_shift``/``frame_length`` arguments (given in
        ``conf`` or their defaults); a frontend whose geometry follows from other settings
        overrides this."""
        parameters = inspect.signature(cls).parameters
        geometry = []
        for name in ("frame_shift", "frame_length"):
            default = parameters[name].default if name in parameters else inspect.Parameter.empty
            value = conf.get(name, default)
            if value is inspect.Parameter.empty or value is None:
                raise ConfigError(
                    f"frontend {cls.__name__} states no frame geometry: give its constructor "
                    "frame_shift and frame_length arguments (samples) or override frame_geometry")
            geometry.append(int(value))
        return geometry[0], geometry[1]

    def upstream_parameters(self) -> list[torch.nn.Parameter]:
        """Parameters of the pre-trained model (trained with the small learning rate)."""
        return []


class LayerWeightedSum(torch.nn.Module):
    """Bias-free ``Linear(L+1 → 1)`` over stacked hidden states, PyTorch's default init
    (uniform in ±1/sqrt(L+1)), as in the reference recipe."""

    def __init__(self, num_layers: int):
        super().__init__()
        self.weights = torch.nn.Linear(num_layers, 1, bias=False)

    def forward(self, hidden_states: list[torch.Tensor]) -> torch.Tensor:
        if len(hidden_states) != self.weights.in_features:
            raise ValueError(
                f"expected {self.weights.in_features} hidden states, got {len(hidden_states)}"
            )
        return self.weights(torch.stack(hidden_states, dim=-1)).squeeze(-1)


class FbankFrontend(DiarFrontend):
    """80-dim Kaldi-style log-mel filterbank (25 ms / 10 ms), per-utterance mean removed."""

    def __init__(
        self,
        fs: int = 16000,
        n_mels: int = 80,
        frame_length_ms: float = 25.0,
        frame_shift_ms: float = 10.0,
        dither: float = 0.0,
        normalize: bool = True,
    ):
        super().__init__()
        self.fs = fs
        self.n_mels = n_mels
        self.frame_length_ms = frame_length_ms
        self.frame_shift_ms = frame_shift_ms
        self.dither = dither
        self.normalize = normalize
        self.frame_shift, self.frame_length = self.frame_geometry(
            fs=fs, frame_length_ms=frame_length_ms, frame_shift_ms=frame_shift_ms
        )

    @classmethod
    def frame_geometry(cls, **conf) -> tuple[int, int]:
        fs = conf.get("fs", 16000)
        shift = round(fs * conf.get("frame_shift_ms", 10.0) / 1000)
        length = round(fs * conf.get("frame_length_ms", 25.0) / 1000)
        return shift, length

    def output_size(self) -> int:
        return self.n_mels

    def forward(self, speech: torch.Tensor, speech_lengths: torch.Tensor):
        from torchaudio.compliance import kaldi

        frame_lengths = num_frames(speech_lengths, self.frame_shift, self.frame_length)
        max_frames = int(frame_lengths.max()) if frame_lengths.numel() else 0
        feats = speech.new_zeros(speech.shape[0], max_frames, self.n_mels)
        for b in range(speech.shape[0]):
            n = int(frame_lengths[b])
            if n == 0:
                continue
            wav = speech[b, : int(speech_lengths[b])].float()[None] * 32768.0
            fb = kaldi.fbank(
                wav,
                num_mel_bins=self.n_mels,
                frame_length=self.frame_length_ms,
                frame_shift=self.frame_shift_ms,
                dither=self.dither if self.training else 0.0,
                sample_frequency=self.fs,
                energy_floor=0.0,
            )[:n]
            if self.normalize:
                fb = fb - fb.mean(dim=0, keepdim=True)
            feats[b, :n] = fb.to(feats.dtype)
        return feats, frame_lengths


class S3prlLayersFrontend(DiarFrontend):
    """Any s3prl upstream (``upstream`` name + ``path_or_url``), all layers weighted-summed."""

    def __init__(
        self,
        upstream: str = "wavlm_base_plus",
        path_or_url: str | None = None,
        cnn_grad_scale: float = 0.1,
        normalize: bool = False,
        extra_conf: dict | None = None,
        frame_shift: int | None = None,
        frame_length: int | None = None,
    ):
        super().__init__()
        from s3prl.nn import S3PRLUpstream

        if upstream not in S3PRLUpstream.available_names():
            raise ConfigError(f"unknown s3prl upstream {upstream!r}")
        self.upstream = S3PRLUpstream(
            upstream, path_or_url=path_or_url, normalize=normalize, extra_conf=extra_conf
        )
        self.frame_shift, self.frame_length = self.frame_geometry(
            frame_shift=frame_shift, frame_length=frame_length
        )
        rate = self.upstream.downsample_rates[-1]
        if rate != self.frame_shift:
            raise ConfigError(
                f"s3prl upstream {upstream!r} has a frame shift of {rate} samples; set "
                f"frontend_conf.frame_shift (and frame_length) to match, not {self.frame_shift}"
            )
        self.cnn_grad_scale = cnn_grad_scale
        inner = getattr(self.upstream.upstream, "model", None)
        if inner is not None and hasattr(inner, "feature_grad_mult"):
            inner.feature_grad_mult = cnn_grad_scale  # s3prl sets 0 (frozen CNN) by default
        else:
            logger.warning("s3prl upstream %s: no CNN gradient scaling available", upstream)
        self.layer_sum = LayerWeightedSum(self.upstream.num_layers)
        self._output_size = self.upstream.hidden_sizes[-1]

    @classmethod
    def frame_geometry(cls, **conf) -> tuple[int, int]:
        """``frontend_conf.frame_shift``/``frame_length``; by default those of the CNN that
        wav2vec 2.0, HuBERT and WavLM share (:class:`WavLMConfig`'s default conv stack)."""
        default = WavLMConfig()
        shift, length = conf.get("frame_shift"), conf.get("frame_length")
        return (default.frame_shift if shift is None else int(shift),
                default.frame_length if length is None else int(length))

    def output_size(self) -> int:
        return self._output_size

    def upstream_parameters(self) -> list[torch.nn.Parameter]:
        return list(self.upstream.parameters())

    def forward(self, speech: torch.Tensor, speech_lengths: torch.Tensor):
        hidden_states, lengths = self.upstream(speech, speech_lengths)
        frame_lengths = num_frames(speech_lengths, self.frame_shift, self.frame_length)
        feats = self.layer_sum(hidden_states)
        # s3prl counts ceil(T / shift) frames; keep the frames the CNN really computes
        frame_lengths = torch.minimum(frame_lengths, lengths[-1].to(frame_lengths.device))
        return feats[:, : int(frame_lengths.max())], frame_lengths


def checkpoint_config(path) -> WavLMConfig:
    """The config of a WavLM checkpoint, without building the network (which would also
    draw from the random generator)."""
    from espnet_prune.errors import CheckpointError
    from espnet_prune.utils.checkpoint import read_checkpoint
    from espnet_prune.wavlm import load_wavlm

    data = read_checkpoint(path, "WavLM checkpoint")
    if not (isinstance(data, dict) and isinstance(data.get("config"), dict)):
        load_wavlm(path)  # not a WavLM checkpoint: its one-line error naming the file
    try:
        return WavLMConfig.from_dict(data["config"])
    except (ConfigError, TypeError) as exc:
        raise CheckpointError(f"{path}: bad key 'config': {exc}") from None


MISSING_WAVLM = ("frontend wavlm_prunable needs frontend_conf.path (a WavLM checkpoint) or "
                 "frontend_conf.config")


class WavLMPrunableFrontend(DiarFrontend):
    """The project's (possibly pruned) WavLM.

    Training starts from an ``espnet_prune.wavlm`` checkpoint (``path``). The task then stores
    that network's ``WavLMConfig`` in the run's ``config.yaml`` (``frontend_conf.config``, see
    :meth:`portable_conf`), so a trained model (config + model file) is rebuilt from its config
    alone: the init file may be moved or deleted, and the weights come from the model file.
    """

    def __init__(self, path: str | None = None, config: dict | None = None,
                 cnn_grad_scale: float = 0.1, dropout: dict | None = None):
        super().__init__()
        from espnet_prune.wavlm import WavLM, WavLMConfig, load_wavlm

        self.path = None if path is None else str(path)
        if config is not None:
            try:
                self.wavlm = WavLM(WavLMConfig.from_dict(dict(config))).eval()
            except (ConfigError, TypeError, ValueError) as exc:
                raise ConfigError(f"frontend_conf.config is not a WavLM config: {exc}") from None
            logger.info("wavlm_prunable: WavLM built from frontend_conf.config (weights are "
                        "expected from the model file)")
        elif path is not None:
            self.wavlm = load_wavlm(path)
        else:
            raise ConfigError(MISSING_WAVLM)
        self.cnn_grad_scale = cnn_grad_scale
        if dropout:  # e.g. {hidden_dropout: 0.1}: WavLMConfig's DROPOUT_FIELDS, train mode only
            self.wavlm.set_dropout(**dropout)
        self.wavlm.feature_extractor.register_forward_hook(_GradScaleHook(cnn_grad_scale))
        with torch.no_grad():
            hidden_states, _ = self.wavlm.extract_features(torch.zeros(1, 2 * self.frame_length))
        self.layer_sum = LayerWeightedSum(len(hidden_states))
        self._output_size = hidden_states[-1].shape[-1]

    @property
    def frame_shift(self) -> int:
        return self.wavlm.config.frame_shift

    @property
    def frame_length(self) -> int:
        return self.wavlm.config.frame_length

    @classmethod
    def frame_geometry(cls, **conf) -> tuple[int, int]:
        """The CNN geometry of ``frontend_conf.config`` or else of the checkpoint ``path``."""
        if conf.get("config") is not None:
            try:
                config = WavLMConfig.from_dict(dict(conf["config"]))
            except (ConfigError, TypeError, ValueError) as exc:
                raise ConfigError(f"frontend_conf.config is not a WavLM config: {exc}") from None
        elif conf.get("path") is not None:
            config = checkpoint_config(conf["path"])
        else:
            raise ConfigError(MISSING_WAVLM)
        return config.frame_shift, config.frame_length

    def output_size(self) -> int:
        return self._output_size

    def portable_conf(self) -> dict:
        """What ``frontend_conf`` needs besides its other keys to rebuild this frontend without
        the init checkpoint (``path`` stays as provenance: the config wins when both exist)."""
        return {"config": self.wavlm.config.to_dict()}

    def upstream_parameters(self) -> list[torch.nn.Parameter]:
        return list(self.wavlm.parameters())

    def forward(self, speech: torch.Tensor, speech_lengths: torch.Tensor):
        hidden_states, lengths = self.wavlm.extract_features(speech, speech_lengths)
        frame_lengths = num_frames(speech_lengths, self.frame_shift, self.frame_length)
        if lengths is not None:
            frame_lengths = torch.minimum(frame_lengths, lengths.to(frame_lengths.device))
        feats = self.layer_sum(hidden_states)
        # a 0-dim tensor bound, not int(): an exported graph (ONNX) keeps the slice dynamic
        return feats[:, : frame_lengths.max()], frame_lengths


FRONTENDS: dict[str, type[DiarFrontend]] = {
    "fbank": FbankFrontend,
    "s3prl": S3prlLayersFrontend,
    "wavlm_prunable": WavLMPrunableFrontend,
}
# names in ESPnet's own diarization task where ours would clash with one of ESPnet's
ESPNET_NAMES = {"s3prl": "s3prl_layers"}


def register_frontend(name: str, frontend_class: type[DiarFrontend]) -> None:
    """Make ``frontend: name`` a choice of the diarization task (and of ESPnet's, see
    :func:`register_espnet_frontends`).  Register before the task's parser is built: its
    ``--frontend`` choices are read from ``FRONTENDS`` then."""
    if not (isinstance(frontend_class, type) and issubclass(frontend_class, DiarFrontend)):
        raise ConfigError(f"frontend {name!r}: {frontend_class!r} is not a DiarFrontend subclass")
    FRONTENDS[name.lower()] = frontend_class
    espnet_diar = sys.modules.get("espnet2.tasks.diar")
    if espnet_diar is not None:  # already imported: its registration has run
        register_espnet_frontends(espnet_diar)


def frame_geometry(frontend: str, frontend_conf: dict | None = None) -> tuple[int, int]:
    """(frame_shift, frame_length) in samples of the frontend named in a config."""
    if frontend not in FRONTENDS:
        raise ConfigError(f"unknown frontend {frontend!r}; choose one of {sorted(FRONTENDS)}")
    return FRONTENDS[frontend].frame_geometry(**(frontend_conf or {}))


def register_espnet_frontends(diar_task_module) -> None:
    """Called right after ``espnet2.tasks.diar`` is imported: adds the registry's frontends
    there.  ESPnet's own names are left alone (our ``s3prl`` is offered as ``s3prl_layers``)."""
    classes = diar_task_module.frontend_choices.classes
    for name, frontend_class in FRONTENDS.items():
        classes.setdefault(ESPNET_NAMES.get(name, name), frontend_class)
