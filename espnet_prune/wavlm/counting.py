"""Analytical parameter and MAC counts, the convention of the paper (DPHuBERT/DiariZen code).

``params`` counts the WavLM weights that pruning can change plus the fixed ones around them:
conv kernels (+ conv bias, + 2 per channel for a conv's GroupNorm/LayerNorm), the feature
projection (LayerNorm 2C + Linear (C+1)D), the positional conv (weight_v D*(D/g)*K, weight_g K,
bias D), the encoder LayerNorm (2D), and per Transformer layer its two LayerNorms (4D),
attention (D+1)*h*dh*3 + (h*dh+1)*D and FFN (D+1)*f + (f+1)*D.  Not counted (as in the
reference): the shared relative-position bias table (num_buckets x heads), the per-layer GRU
gate (dh*8+8 + heads), and training-only tensors (mask embedding, gates).  For WavLM Base+ this
gives 94,370,944 (transformers' WavLMModel has 94,381,936 tensors elements: +3,840 bias table,
+6,384 GRU gates, +768 mask embedding) = the paper's 94.4M.

The paper's 316.6M for Large is not this convention: it is the WavLM paper's 316.62M, which
also counts the pre-training prediction heads of the original models (final_proj D->final_dim
and 504 label embeddings of final_dim; absent from released checkpoints).  This convention gives
315.43M for Large; ``params_with_pretraining_heads`` (``PRETRAINING_HEADS``) reproduces 316.6M
(and 94.70M, the WavLM paper's Base+ number).

``macs`` is for 1 s of 16 kHz audio (49 frames): conv T_out*K*C_in*C_out, projection T*C*D,
positional conv (T+1)*K*D*D/g, attention 4*T*h*D*dh + 2*T^2*h*dh, FFN 2*T*D*f; norms,
activations, biases and the position-bias gate are not counted.  Base+: 6.91G, Large: 17.81G.

Every function takes a *structure*: unit counts per block, either ints (an actual or
deterministically gated model) or tensors (expected L0 of gates, differentiable).
"""

from __future__ import annotations

from dataclasses import dataclass

from espnet_prune.wavlm.config import WavLMConfig

SAMPLE_RATE = 16000


@dataclass
class Structure:
    conv_channels: list  # per conv layer: number of output channels
    heads: list  # per layer: number of heads (0 when the attention block is absent)
    ffn_dims: list  # per layer: FFN width (0 when the FFN block is absent)
    attention_scale: list  # per layer: 1/0 (present/absent) or the expected layer gate
    ffn_scale: list


def structure_of_config(config: WavLMConfig) -> Structure:
    return Structure(
        conv_channels=list(config.conv_channels),
        heads=[len(h) for h in config.kept_heads],
        ffn_dims=list(config.ffn_dims),
        attention_scale=[1 if a else 0 for a in config.use_attention],
        ffn_scale=[1 if f else 0 for f in config.use_ffn],
    )


def conv_output_frames(num_samples: int, config: WavLMConfig) -> list[int]:
    frames, t = [], num_samples
    for k, s in zip(config.conv_kernels, config.conv_strides):
        t = (t - k) // s + 1
        frames.append(t)
    return frames


def count_params(config: WavLMConfig, st: Structure):
    d, dh = config.embed_dim, config.head_dim
    total = 0
    c_in = 1
    for i, (c_out, k) in enumerate(zip(st.conv_channels, config.conv_kernels)):
        total = total + c_in * c_out * k
        if config.conv_bias:
            total = total + c_out
        if config.extractor_norm == "layer" or i == 0:
            total = total + 2 * c_out
        c_in = c_out
    if config.feature_projection_layer_norm:
        total = total + 2 * c_in
    total = total + (c_in + 1) * d
    k, g = config.pos_conv_kernel, config.pos_conv_groups
    total = total + d * (d // g) * k + k + d + 2 * d
    for h, f, sa, sf in zip(st.heads, st.ffn_dims, st.attention_scale, st.ffn_scale):
        total = total + 4 * d
        total = total + sa * ((d + 1) * h * dh * 3 + (h * dh + 1) * d)
        total = total + sf * ((d + 1) * f + (f + 1) * d)
    return total


def count_macs(config: WavLMConfig, st: Structure, seconds: float = 1.0):
    d, dh = config.embed_dim, config.head_dim
    frames = conv_output_frames(int(round(seconds * SAMPLE_RATE)), config)
    total = 0
    c_in = 1
    for c_out, k, t in zip(st.conv_channels, config.conv_kernels, frames):
        total = total + t * k * c_in * c_out
        c_in = c_out
    t = frames[-1]
    total = total + t * c_in * d
    k, g = config.pos_conv_kernel, config.pos_conv_groups
    total = total + (t + 2 * (k // 2) - k + 1) * k * d * (d // g)
    for h, f, sa, sf in zip(st.heads, st.ffn_dims, st.attention_scale, st.ffn_scale):
        total = total + sa * (4 * t * h * d * dh + 2 * t * t * h * dh)
        total = total + sf * 2 * t * d * f
    return total


def pretraining_head_params(config: WavLMConfig, final_dim: int, num_labels: int) -> int:
    return (config.embed_dim + 1) * final_dim + num_labels * final_dim
