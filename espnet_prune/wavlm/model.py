"""WavLM (also HuBERT / wav2vec 2.0) with hard-concrete gates and physical pruning."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from espnet_prune.errors import ConfigError
from espnet_prune.wavlm.components import (
    ConvLayer,
    EncoderLayer,
    FeatureProjection,
    PositionalConv,
    is_exporting,
    masked_wave_norm,
    relative_position_buckets,
    scale_grad,
)
from espnet_prune.wavlm.config import (
    DEFAULT_PRUNING_UNITS,
    DROPOUT_FIELDS,
    PRUNING_UNITS,
    WavLMConfig,
)
from espnet_prune.wavlm.counting import Structure, count_macs, count_params
from espnet_prune.wavlm.hardconcrete import HardConcrete

# initial keep-probabilities of the gates (reference: near 1, FFN units at log_alpha = 0)
GATE_INIT_KEEP = {"conv": 0.99, "head": 0.99, "interm": 0.5, "attlayer": 0.99, "ffnlayer": 0.99}


class FeatureExtractor(nn.Module):
    """The 7-layer CNN: waveform [B, T] -> features [B, T', C] (+ last conv gate values)."""

    def __init__(self, config: WavLMConfig):
        super().__init__()
        layers, c_in = [], 1
        for i, (c, k, s) in enumerate(zip(config.conv_channels, config.conv_kernels,
                                          config.conv_strides)):
            norm = "layer" if config.extractor_norm == "layer" else ("group" if i == 0 else None)
            layers.append(ConvLayer(c_in, c, k, s, config.conv_bias, norm,
                                    config.extractor_layer_norm_eps))
            c_in = c
        self.conv_layers = nn.ModuleList(layers)
        self.register_buffer("output_scale",
                             torch.ones(c_in) if config.extractor_output_scale else None)

    def forward(self, wav):
        x = wav.unsqueeze(1)
        mask = None
        for layer in self.conv_layers:
            x, mask = layer(x)
        if self.output_scale is not None:
            x = x * self.output_scale[:, None]
        return x.transpose(1, 2), mask


class Encoder(nn.Module):
    def __init__(self, config: WavLMConfig):
        super().__init__()
        c = config
        self.layer_norm_first = c.layer_norm_first
        self.num_buckets, self.max_distance = c.num_buckets, c.max_distance
        self.pos_conv = PositionalConv(c.embed_dim, c.pos_conv_kernel, c.pos_conv_groups)
        self.layer_norm = nn.LayerNorm(c.embed_dim, eps=c.layer_norm_eps)
        self.rel_attn_embed = (nn.Embedding(c.num_buckets, c.num_heads)
                               if c.relative_position_bias else None)
        self.layers = nn.ModuleList(
            EncoderLayer(c.embed_dim, c.num_heads, c.kept_heads[i], c.ffn_dims[i],
                         c.use_attention[i], c.use_ffn[i], c.layer_norm_first,
                         c.relative_position_bias and c.gru_rel_pos, c.layer_norm_eps)
            for i in range(c.num_layers))
        self.dropout = nn.Dropout(0.0)
        self.layerdrop = 0.0

    def position_bias(self, length: int, device) -> torch.Tensor | None:
        """Relative position bias for all original heads, [H, T, T]."""
        if self.rel_attn_embed is None:
            return None
        buckets = relative_position_buckets(length, self.num_buckets, self.max_distance, device)
        return self.rel_attn_embed(buckets).permute(2, 0, 1)

    def forward(self, x, key_padding_mask=None):
        if key_padding_mask is not None:
            x = x.masked_fill(key_padding_mask.unsqueeze(-1), 0.0)
        x = x + self.pos_conv(x)
        if not self.layer_norm_first:
            x = self.layer_norm(x)
        x = self.dropout(x)
        bias = self.position_bias(x.shape[1], x.device)
        hidden = [x]
        for layer in self.layers:
            # LayerDrop (training only): a skipped layer passes its input on, so its entry in
            # the hidden-state list repeats the previous one.  The skipped layer's parameters
            # get no gradient in that step (DDP needs --unused_parameters true).
            if not (self.training and self.layerdrop > 0
                    and float(torch.rand(())) < self.layerdrop):
                x = layer(x, bias, key_padding_mask)
            hidden.append(x)
        # Pre-LN (Large) models: like transformers >= 5 and the paper's code, the last hidden
        # state is the last layer's output; ``self.layer_norm`` (s3prl's final norm) is not
        # applied to any of the L+1 states.
        return hidden


class WavLM(nn.Module):
    """``extract_features(wav [B, T], lengths=None) -> (L+1 hidden states [B, F, D], lengths)``."""

    def __init__(self, config: WavLMConfig):
        super().__init__()
        config.validate()
        self.config = config
        self.feature_extractor = FeatureExtractor(config)
        self.feature_projection = FeatureProjection(
            config.conv_channels[-1], config.embed_dim, config.feature_projection_layer_norm,
            config.layer_norm_eps)
        self.encoder = Encoder(config)
        # Gradient multiplier at the CNN output (the reference's ``feature_grad_mult``): a
        # run-time setting of the training stage, not part of the checkpoint.
        self.cnn_grad_scale = 1.0
        self.set_dropout()
        if config.pruning_units:
            self._create_gates(config.pruning_units)

    def set_dropout(self, **values: float) -> None:
        """Set dropout / LayerDrop probabilities (``DROPOUT_FIELDS`` of the config) in the config
        and the modules; without arguments, (re)apply the config's values."""
        unknown = set(values) - set(DROPOUT_FIELDS)
        if unknown:
            raise ConfigError(f"unknown dropout fields {sorted(unknown)}; "
                              f"choose from {DROPOUT_FIELDS}")
        for name, value in values.items():
            setattr(self.config, name, float(value))
        self.config.validate()
        c = self.config
        self.feature_projection.dropout.p = c.feat_proj_dropout
        self.encoder.dropout.p = c.hidden_dropout
        self.encoder.layerdrop = c.layerdrop
        for layer in self.encoder.layers:
            layer.dropout.p = c.hidden_dropout
            if layer.attention is not None:
                layer.attention.dropout = c.attention_dropout
            if layer.feed_forward is not None:
                layer.feed_forward.dropout.p = c.activation_dropout

    # ---------------------------------------------------------------- forward
    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        for k, s in zip(self.config.conv_kernels, self.config.conv_strides):
            lengths = torch.div(lengths - k, s, rounding_mode="floor") + 1
        return lengths.clamp_min(0)

    def extract_features(self, wav: torch.Tensor, lengths: torch.Tensor | None = None):
        if wav.dim() != 2:
            raise ValueError(f"expected a waveform batch [B, T], got shape {tuple(wav.shape)}")
        if self.config.normalize_waveform:
            wav = self._normalize(wav, lengths)
        features, conv_mask = self.feature_extractor(wav)
        if self.cnn_grad_scale != 1.0 and torch.is_grad_enabled():
            # after the last conv gate: the conv weights and gates get the scaled gradient of
            # everything downstream; terms on the gates themselves (expected size) do not
            features = scale_grad(features, self.cnn_grad_scale)
        frame_lengths, padding = None, None
        if lengths is not None:
            lengths = torch.as_tensor(lengths, device=wav.device)
            frame_lengths = self.frame_lengths(lengths)
            frames = torch.arange(features.shape[1], device=wav.device)
            padding = frames[None, :] >= frame_lengths[:, None]
            # a graph being exported keeps the mask (the batch at export time may be full):
            # an all-False mask changes no value, it only adds zeros to the attention bias
            if not is_exporting() and not padding.any():
                padding = None
        x = self.feature_projection(features, conv_mask)
        return self.encoder(x, padding), frame_lengths

    forward = extract_features

    @staticmethod
    def _normalize(wav, lengths):
        if lengths is None:
            return F.layer_norm(wav, wav.shape[-1:])
        if is_exporting():  # no per-row loop: the graph's batch size is not fixed
            return masked_wave_norm(wav, torch.as_tensor(lengths, device=wav.device))
        out = torch.zeros_like(wav)
        for i, n in enumerate(torch.as_tensor(lengths).tolist()):
            out[i, :n] = F.layer_norm(wav[i, :n], (n,))
        return out

    # ---------------------------------------------------------------- gates
    def _create_gates(self, units) -> None:
        for layer in self.feature_extractor.conv_layers:
            layer.gate = HardConcrete(layer.conv.out_channels, GATE_INIT_KEEP["conv"]) if (
                "conv" in units) else None
        for layer in self.encoder.layers:
            att, ffn = layer.attention, layer.feed_forward
            if att is not None:
                att.gate = (HardConcrete(att.num_kept_heads, GATE_INIT_KEEP["head"])
                            if "head" in units and att.num_kept_heads > 0 else None)
                layer.attention_gate = (HardConcrete(1, GATE_INIT_KEEP["attlayer"])
                                        if "attlayer" in units else None)
            if ffn is not None:
                ffn.gate = (HardConcrete(ffn.ffn_dim, GATE_INIT_KEEP["interm"])
                            if "interm" in units and ffn.ffn_dim > 0 else None)
                layer.ffn_gate = (HardConcrete(1, GATE_INIT_KEEP["ffnlayer"])
                                  if "ffnlayer" in units else None)

    def add_pruning_gates(self, units=DEFAULT_PRUNING_UNITS) -> None:
        """Add fresh hard-concrete gates on ``units`` (subset of ``PRUNING_UNITS``)."""
        units = list(dict.fromkeys(units))
        unknown = set(units) - set(PRUNING_UNITS)
        if unknown:
            raise ConfigError(f"unknown pruning units {sorted(unknown)}; "
                              f"choose from {PRUNING_UNITS}")
        self._create_gates(units)
        self.config.pruning_units = units

    def gates(self) -> list[HardConcrete]:
        return [m for m in self.modules() if isinstance(m, HardConcrete)]

    def gate_parameters(self) -> list[nn.Parameter]:
        return [g.log_alpha for g in self.gates()]

    def main_parameters(self) -> list[nn.Parameter]:
        gate_ids = {id(p) for p in self.gate_parameters()}
        return [p for p in self.parameters() if id(p) not in gate_ids]

    # ---------------------------------------------------------------- counting
    def structure(self, mode: str = "deterministic") -> Structure:
        """Unit counts: ``"expected"`` (differentiable L0 of the gates), ``"deterministic"``
        (what ``prune()`` would keep), or ``"actual"`` (module sizes, gates ignored)."""
        def units(gate, size):
            if gate is None or mode == "actual":
                return size
            return gate.l0_norm() if mode == "expected" else gate.num_kept()

        def scale(gate):
            if gate is None or mode == "actual":
                return 1
            return gate.l0_norm() if mode == "expected" else int(gate.num_kept() > 0)

        conv = [units(layer.gate, layer.conv.out_channels)
                for layer in self.feature_extractor.conv_layers]
        heads, ffn, att_scale, ffn_scale = [], [], [], []
        for layer in self.encoder.layers:
            att, ff = layer.attention, layer.feed_forward
            heads.append(0 if att is None else units(att.gate, att.num_kept_heads))
            att_scale.append(0 if att is None else scale(layer.attention_gate))
            ffn.append(0 if ff is None else units(ff.gate, ff.ffn_dim))
            ffn_scale.append(0 if ff is None else scale(layer.ffn_gate))
        return Structure(conv, heads, ffn, att_scale, ffn_scale)

    def expected_num_params(self) -> torch.Tensor:
        return torch.as_tensor(count_params(self.config, self.structure("expected")),
                               dtype=torch.float32)

    def expected_macs(self) -> torch.Tensor:
        """Expected MACs for 1 s of audio."""
        return torch.as_tensor(count_macs(self.config, self.structure("expected")),
                               dtype=torch.float32)

    def num_params(self) -> int:
        """Parameters of the model ``prune()`` would give (see ``counting`` for the convention)."""
        return int(count_params(self.config, self.structure("deterministic")))

    def macs_per_second(self) -> float:
        return float(count_macs(self.config, self.structure("deterministic")))

    # ---------------------------------------------------------------- pruning
    @torch.no_grad()
    def prune(self) -> WavLMConfig:
        """Physically remove units whose deterministic gate is 0, fold kept gate values into the
        next layer, drop the gates; returns (and sets) the new config."""
        self.eval()
        cfg = self.config
        convs = self.feature_extractor.conv_layers
        for i, layer in enumerate(convs):
            if layer.gate is None:
                continue
            mask = layer.gate.deterministic_mask()
            index = mask.nonzero().squeeze(-1)
            if len(index) == 0:
                raise ConfigError(f"conv layer {i} lost all its channels; the CNN would output "
                                  "nothing (lower the sparsity target)")
            layer.prune_output(index)
            if i + 1 < len(convs):
                convs[i + 1].prune_input(index, mask)
            else:
                self._prune_extractor_output(index, mask[index])
            layer.gate = None
            cfg.conv_channels[i] = len(index)
        for i, layer in enumerate(self.encoder.layers):
            att, ff = layer.attention, layer.feed_forward
            if att is not None:
                if att.gate is not None:
                    att.prune_heads(att.gate.deterministic_mask())
                    att.gate = None
                if layer.attention_gate is not None:
                    value = float(layer.attention_gate.deterministic_mask()[0])
                    layer.attention_gate = None
                    if value == 0.0:
                        layer.attention = None
                    else:
                        att.scale_output(value)
            if ff is not None:
                if ff.gate is not None:
                    ff.prune_units(ff.gate.deterministic_mask())
                    ff.gate = None
                if layer.ffn_gate is not None:
                    value = float(layer.ffn_gate.deterministic_mask()[0])
                    layer.ffn_gate = None
                    if value == 0.0:
                        layer.feed_forward = None
                    else:
                        ff.scale_output(value)
            att, ff = layer.attention, layer.feed_forward
            cfg.use_attention[i] = att is not None
            cfg.kept_heads[i] = list(att.kept_heads) if att is not None else []
            cfg.use_ffn[i] = ff is not None
            cfg.ffn_dims[i] = ff.ffn_dim if ff is not None else 0
        cfg.pruning_units = []
        cfg.validate()
        return cfg

    def _prune_extractor_output(self, index, kept_values) -> None:
        fe, proj = self.feature_extractor, self.feature_projection
        old_scale = fe.output_scale
        scale = kept_values if old_scale is None else old_scale[index] * kept_values
        proj.prune_input(index, scale)
        has_norm = proj.layer_norm is not None
        fe.output_scale = scale.clone() if has_norm else None
        self.config.extractor_output_scale = has_norm
