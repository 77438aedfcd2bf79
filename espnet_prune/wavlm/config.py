"""WavLM architecture description with per-layer lists, so a pruned model is just another config.

The same dataclass describes WavLM (gated relative position bias), HuBERT and wav2vec 2.0
(``relative_position_bias=False``), in the Base layout (post-LN Transformer, group-norm CNN) and
the Large layout (pre-LN "stable layer norm" Transformer, layer-norm CNN).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields

from espnet_prune.errors import ConfigError

PRUNING_UNITS = ("conv", "head", "interm", "attlayer", "ffnlayer")
# Training-time regularisation (inactive in eval mode; not part of the architecture).
DROPOUT_FIELDS = ("feat_proj_dropout", "attention_dropout", "activation_dropout",
                  "hidden_dropout", "layerdrop")
# The reference recipe's WavLM dropout (Hugging Face's WavLM Base+/Large configuration, which
# its conversion copies): the same values in teacher fine-tuning, pruning, post-pruning
# distillation and final fine-tuning.  Its configuration also stores LayerDrop (0.05 Base+,
# 0.1 Large), but its hidden-state path (``extract_features``) never applies it, so the
# reference's effective LayerDrop is 0 and so is ours (see espnet_prune/FIDELITY.md).
REFERENCE_DROPOUT = {"feat_proj_dropout": 0.1, "attention_dropout": 0.1,
                     "activation_dropout": 0.0, "hidden_dropout": 0.1, "layerdrop": 0.0}
DEFAULT_PRUNING_UNITS = ("conv", "head", "interm")
EXTRACTOR_NORMS = ("group", "layer")


def conv_geometry(kernels, strides) -> tuple[int, int]:
    """(frame shift, frame length) in samples of a stack of 1-D convolutions without padding:
    an output frame every product-of-strides samples, each computed from its receptive field.
    ``T`` samples give ``(T - length) // shift + 1`` frames (none below ``length``), exactly
    the layer-by-layer count of :meth:`espnet_prune.wavlm.WavLM.frame_lengths`."""
    shift, length = 1, 1
    for kernel, stride in zip(kernels, strides):
        length += (kernel - 1) * shift
        shift *= stride
    return shift, length


@dataclass
class WavLMConfig:
    # CNN feature extractor: one entry per conv layer.
    conv_channels: list[int] = field(default_factory=lambda: [512] * 7)
    conv_kernels: list[int] = field(default_factory=lambda: [10, 3, 3, 3, 3, 2, 2])
    conv_strides: list[int] = field(default_factory=lambda: [5, 2, 2, 2, 2, 2, 2])
    conv_bias: bool = False
    # "group": GroupNorm (one group per channel) after the first conv only (Base);
    # "layer": LayerNorm over channels after every conv (Large).
    extractor_norm: str = "group"
    # True once the last conv layer was pruned with soft gate values: they are kept as a
    # per-channel scale because they cannot be folded through the projection's LayerNorm.
    extractor_output_scale: bool = False
    feature_projection_layer_norm: bool = True
    embed_dim: int = 768
    num_layers: int = 12
    num_heads: int = 12  # heads of the original model; head_dim = embed_dim // num_heads
    kept_heads: list[list[int]] | None = None  # per layer: original indices of kept heads
    ffn_dims: list[int] | None = None
    use_attention: list[bool] | None = None
    use_ffn: list[bool] | None = None
    layer_norm_first: bool = False  # Large: pre-LN Transformer layers + final LayerNorm
    pos_conv_kernel: int = 128
    pos_conv_groups: int = 16
    relative_position_bias: bool = True  # False: HuBERT / wav2vec 2.0
    gru_rel_pos: bool = True
    num_buckets: int = 320
    max_distance: int = 800
    layer_norm_eps: float = 1e-5
    extractor_layer_norm_eps: float = 1e-5
    # s3prl's "normalize": zero-mean unit-variance waveform per utterance (WavLM Large)
    normalize_waveform: bool = False
    pruning_units: list[str] = field(default_factory=list)
    # Dropout (train mode only), named as in Hugging Face's WavLMConfig: after the feature
    # projection; on the attention weights; on the FFN's intermediate activations; on the
    # residual branches (attention and FFN outputs) and after the positional convolution.
    feat_proj_dropout: float = 0.0
    attention_dropout: float = 0.0
    activation_dropout: float = 0.0
    hidden_dropout: float = 0.0
    # LayerDrop: probability of skipping a whole Transformer layer per batch in training; the
    # skipped layer's hidden state is its input (the L+1 list keeps its length).
    layerdrop: float = 0.0

    def __post_init__(self):
        n = self.num_layers
        if self.kept_heads is None:
            self.kept_heads = [list(range(self.num_heads)) for _ in range(n)]
        if self.ffn_dims is None:
            self.ffn_dims = [4 * self.embed_dim] * n
        if self.use_attention is None:
            self.use_attention = [True] * n
        if self.use_ffn is None:
            self.use_ffn = [True] * n
        self.validate()

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads

    # The CNN's frame geometry, the owner of every frame count in the project (the default
    # stack: 400-sample frames every 320 samples, 25 ms / 20 ms at 16 kHz).
    @property
    def frame_shift(self) -> int:
        """Samples between two output frames (the product of the conv strides)."""
        return conv_geometry(self.conv_kernels, self.conv_strides)[0]

    @property
    def frame_length(self) -> int:
        """Samples one output frame is computed from (the CNN's receptive field)."""
        return conv_geometry(self.conv_kernels, self.conv_strides)[1]

    def validate(self) -> None:
        n_conv = len(self.conv_channels)
        if not (len(self.conv_kernels) == len(self.conv_strides) == n_conv) or n_conv == 0:
            raise ConfigError("conv_channels, conv_kernels and conv_strides must have one "
                              f"entry per conv layer (got {n_conv}, {len(self.conv_kernels)}, "
                              f"{len(self.conv_strides)})")
        if any(c < 1 for c in self.conv_channels):
            raise ConfigError(f"every conv layer needs >= 1 channel: {self.conv_channels}")
        if self.extractor_norm not in EXTRACTOR_NORMS:
            raise ConfigError(f"extractor_norm must be one of {EXTRACTOR_NORMS}, "
                              f"got {self.extractor_norm!r}")
        if self.embed_dim % self.num_heads:
            raise ConfigError(f"embed_dim {self.embed_dim} not divisible by num_heads "
                              f"{self.num_heads}")
        for name in ("kept_heads", "ffn_dims", "use_attention", "use_ffn"):
            if len(getattr(self, name)) != self.num_layers:
                raise ConfigError(f"{name} needs {self.num_layers} entries (one per layer), "
                                  f"got {len(getattr(self, name))}")
        for i, heads in enumerate(self.kept_heads):
            if sorted(set(heads)) != list(heads) or any(
                    h < 0 or h >= self.num_heads for h in heads):
                raise ConfigError(f"kept_heads[{i}] must be increasing original head indices "
                                  f"in [0, {self.num_heads}), got {heads}")
        if any(f < 0 for f in self.ffn_dims):
            raise ConfigError(f"ffn_dims must be >= 0: {self.ffn_dims}")
        for name in DROPOUT_FIELDS:
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"{name} must lie in [0, 1), got {value}")
        unknown = set(self.pruning_units) - set(PRUNING_UNITS)
        if unknown:
            raise ConfigError(f"unknown pruning units {sorted(unknown)}; "
                              f"choose from {PRUNING_UNITS}")

    def to_dict(self) -> dict:
        return copy.deepcopy(asdict(self))

    @classmethod
    def from_dict(cls, data: dict) -> WavLMConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown WavLM config fields: {sorted(unknown)}")
        return cls(**copy.deepcopy(data))


# Pre-training prediction heads that the original (fairseq/unilm) models had and the released
# checkpoints do not: final_proj (embed_dim -> final_dim) and 504 label embeddings of final_dim.
# The WavLM/SUPERB papers' parameter counts (94.70M Base+, 316.62M Large) include them.
PRETRAINING_HEADS = {"base_plus": (256, 504), "base": (256, 504), "large": (768, 504)}

# Per-layer structure of BUT's released WavLM Base+ pruned to 80 % sparsity for diarization
# (DiariZen "wavlm_base_s80_md"), used as a realistic pruned structure for benchmarks.
_S80_KEPT_HEADS = [[1, 6], [5, 7, 8], [0, 3, 9], [0, 1, 4, 8, 11], [6, 8], [0], [7, 8, 10, 11],
                   [0, 1, 4, 8], [], [], [4, 7], [5]]
_S80_FFN = [666, 660, 649, 1080, 237, 299, 437, 573, 53, 80, 211, 334]
_S80_CONV = [90, 161, 173, 181, 351, 155, 137]


def override_config(config: WavLMConfig, overrides: dict) -> WavLMConfig:
    """``config`` with some fields replaced; per-layer lists that a new layer or head count
    makes stale (kept heads, per-layer flags, uniform FFN sizes) are derived again unless given.

    Without this, ``{"num_heads": 16}`` on a 4-head preset would silently keep 4 of 16 heads.
    """
    data = config.to_dict()
    num_layers = int(overrides.get("num_layers", config.num_layers))
    if num_layers != config.num_layers or overrides.get("num_heads", config.num_heads) != \
            config.num_heads:
        data["kept_heads"] = None
    if num_layers != config.num_layers:
        data["use_attention"] = data["use_ffn"] = None
        if len(set(config.ffn_dims)) == 1:
            data["ffn_dims"] = [config.ffn_dims[0]] * num_layers
    data.update(overrides)
    return WavLMConfig.from_dict(data)


def wavlm_config(name: str) -> WavLMConfig:
    """Preset architectures: ``base_plus``, ``base``, ``large``, ``tiny`` (tests), ``mini``
    (the CPU mini recipe), ``base_plus_s80`` (the released 80 %-sparse Base+ structure).

    The paper-size presets carry the reference's dropout (``REFERENCE_DROPOUT``); ``tiny`` and
    ``mini`` have none."""
    if name in ("base_plus", "base"):
        return WavLMConfig(**REFERENCE_DROPOUT)
    if name == "large":
        return WavLMConfig(extractor_norm="layer", embed_dim=1024, num_layers=24, num_heads=16,
                           layer_norm_first=True, normalize_waveform=True, **REFERENCE_DROPOUT)
    if name == "tiny":
        return WavLMConfig(conv_channels=[32, 32, 32, 32, 32, 32, 32], embed_dim=48,
                           num_layers=3, num_heads=4, ffn_dims=[64] * 3, pos_conv_kernel=16,
                           pos_conv_groups=4)
    if name == "mini":
        # Cheap CNN, and like Base+ almost everything prunable (98 % of the parameters), so
        # that 80 % and 90 % sparsity targets are meaningful; ``tiny`` tops out at 86 %.
        return WavLMConfig(conv_channels=[32] * 7, embed_dim=64, num_layers=3, num_heads=4,
                           ffn_dims=[256] * 3, pos_conv_kernel=8, pos_conv_groups=16)
    if name == "base_plus_s80":
        return WavLMConfig(conv_channels=list(_S80_CONV), kept_heads=copy.deepcopy(
            _S80_KEPT_HEADS), ffn_dims=list(_S80_FFN), extractor_output_scale=True,
            use_attention=[len(h) > 0 for h in _S80_KEPT_HEADS], **REFERENCE_DROPOUT)
    raise ConfigError(f"unknown WavLM preset {name!r}; choose base_plus, base, large, tiny, "
                      "mini, base_plus_s80")
