"""Building blocks of the prunable WavLM, each with its optional hard-concrete gate and its own
physical ``prune()``.

Gates multiply a block's units (conv output channels, attention heads, FFN intermediate units,
whole attention / FFN outputs).  ``prune()`` removes units whose deterministic gate is 0 and
folds the soft value of kept units into the following linear map, so the pruned block computes
exactly what the masked block computed in eval mode.  Layer norms that normalise over a pruned
dimension use statistics over the kept (non-zero mask) units only, which is what the smaller
layer norm of the pruned model computes.
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from espnet_prune.wavlm.hardconcrete import HardConcrete


class _ScaleGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.scale, None


def scale_grad(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Identity whose backward multiplies the gradient by ``scale``."""
    return _ScaleGrad.apply(x, scale)


def is_exporting() -> bool:
    """True while a graph is being traced or exported (ONNX): code paths that branch on
    tensor values or loop over the batch then take a shape-generic path of the same values."""
    return torch.jit.is_tracing() or torch.compiler.is_exporting()


def masked_wave_norm(wav: torch.Tensor, lengths: torch.Tensor, eps: float = 1e-5):
    """Per-row waveform layer norm over the first ``lengths[b]`` samples, zeros after them (what
    ``F.layer_norm(wav[b, :n], (n,))`` row by row gives, up to float rounding)."""
    keep = (torch.arange(wav.shape[-1], device=wav.device)[None, :] < lengths[:, None])
    keep = keep.to(wav.dtype)
    count = lengths.to(wav.dtype).clamp_min(1.0)[:, None]
    mean = (wav * keep).sum(-1, keepdim=True) / count
    var = ((wav - mean).pow(2) * keep).sum(-1, keepdim=True) / count
    return (wav - mean) * torch.rsqrt(var + eps) * keep


def masked_layer_norm(x, keep, weight, bias, eps):
    """LayerNorm over the last dim, with statistics over ``keep`` (bool [C]) units only."""
    if keep is None:  # the weight's (fixed) size, not x's: a traced shape is no constant size
        return F.layer_norm(x, weight.shape, weight, bias, eps)
    w = keep.to(x.dtype)
    n = w.sum().clamp_min(1.0)
    mean = (x * w).sum(-1, keepdim=True) / n
    var = ((x - mean).pow(2) * w).sum(-1, keepdim=True) / n
    return (x - mean) * torch.rsqrt(var + eps) * weight + bias


def _linear(in_features: int, out_features: int) -> nn.Linear:
    """``nn.Linear``; a fully pruned one (no weights: a layer with no head or FFN unit left)
    without torch's "Initializing zero-element tensors is a no-op" warning, which every
    load of such a checkpoint would otherwise print."""
    if in_features and out_features:
        return nn.Linear(in_features, out_features)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Initializing zero-element tensors")
        return nn.Linear(in_features, out_features)


def _select(param: torch.Tensor, index: torch.Tensor, dim: int) -> nn.Parameter:
    return nn.Parameter(param.detach().index_select(dim, index).clone(),
                        requires_grad=param.requires_grad)


def _prune_linear(linear: nn.Linear, index: torch.Tensor, dim: str) -> None:
    """Keep rows (``dim="output"``) or columns (``"input"``) ``index`` of ``linear`` in place."""
    if dim == "output":
        linear.weight = _select(linear.weight, index, 0)
        if linear.bias is not None:
            linear.bias = _select(linear.bias, index, 0)
        linear.out_features = len(index)
    else:
        linear.weight = _select(linear.weight, index, 1)
        linear.in_features = len(index)


def _scale_input_columns(linear: nn.Linear | nn.Conv1d, scale: torch.Tensor) -> None:
    with torch.no_grad():
        shape = (1, -1) + (1,) * (linear.weight.dim() - 2)
        linear.weight.mul_(scale.view(shape))


class ConvLayer(nn.Module):
    """Conv1d -> (GroupNorm per channel | LayerNorm over channels | nothing) -> GELU [-> gate]."""

    def __init__(self, in_channels, out_channels, kernel, stride, bias, norm, eps=1e-5):
        super().__init__()
        self.kernel = kernel
        self.stride = stride
        self.conv = nn.Conv1d(in_channels, out_channels, kernel, stride=stride, bias=bias)
        self.norm_type = norm
        self.eps = eps
        if norm == "group":
            self.norm = nn.GroupNorm(out_channels, out_channels, eps=eps, affine=True)
        elif norm == "layer":
            self.norm = nn.LayerNorm(out_channels, eps=eps)
        else:
            self.norm = None
        self.gate: HardConcrete | None = None

    def forward(self, x):
        """x [B, C_in, T] -> (y [B, C_out, T'], mask [C_out] or None)."""
        mask = self.gate() if self.gate is not None else None
        x = self.conv(x)
        if self.norm_type == "group":
            x = self.norm(x)
        elif self.norm_type == "layer":
            keep = None if mask is None else mask != 0
            x = masked_layer_norm(x.transpose(1, 2), keep, self.norm.weight, self.norm.bias,
                                  self.eps).transpose(1, 2)
        x = F.gelu(x)
        if mask is not None:
            x = x * mask[:, None]
        return x, mask

    def prune_output(self, index: torch.Tensor) -> None:
        self.conv.weight = _select(self.conv.weight, index, 0)
        if self.conv.bias is not None:
            self.conv.bias = _select(self.conv.bias, index, 0)
        self.conv.out_channels = len(index)
        if self.norm is not None:
            self.norm.weight = _select(self.norm.weight, index, 0)
            self.norm.bias = _select(self.norm.bias, index, 0)
            if self.norm_type == "group":
                self.norm.num_groups = self.norm.num_channels = len(index)
            else:
                self.norm.normalized_shape = (len(index),)

    def prune_input(self, index: torch.Tensor, scale: torch.Tensor) -> None:
        _scale_input_columns(self.conv, scale)
        self.conv.weight = _select(self.conv.weight, index, 1)
        self.conv.in_channels = len(index)


class FeatureProjection(nn.Module):
    """(LayerNorm over CNN channels) -> Linear(C, D) -> dropout (train mode)."""

    def __init__(self, in_features, embed_dim, layer_norm=True, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.layer_norm = nn.LayerNorm(in_features, eps=eps) if layer_norm else None
        self.projection = nn.Linear(in_features, embed_dim)
        self.dropout = nn.Dropout(0.0)

    def forward(self, x, conv_mask=None):
        """x [B, T, C]; ``conv_mask`` = the last conv layer's gate values (already applied)."""
        if self.layer_norm is not None:
            keep = None if conv_mask is None else conv_mask != 0
            x = masked_layer_norm(x, keep, self.layer_norm.weight, self.layer_norm.bias,
                                  self.eps)
            if keep is not None:
                x = x * keep.to(x.dtype)
        return self.dropout(self.projection(x))

    def prune_input(self, index: torch.Tensor, scale: torch.Tensor) -> None:
        """Without a layer norm the soft values fold into the projection; with one they
        cannot, and the caller keeps them as the extractor's output scale."""
        _prune_linear(self.projection, index, "input")
        if self.layer_norm is not None:
            self.layer_norm.weight = _select(self.layer_norm.weight, index, 0)
            self.layer_norm.bias = _select(self.layer_norm.bias, index, 0)
            self.layer_norm.normalized_shape = (len(index),)
        else:
            _scale_input_columns(self.projection, scale)


class PositionalConv(nn.Module):
    """Grouped conv positional embedding with weight norm over dim 2 (weight_g [1,1,K])."""

    def __init__(self, embed_dim, kernel, groups):
        super().__init__()
        self.kernel = kernel
        self.groups = groups
        self.weight_g = nn.Parameter(torch.ones(1, 1, kernel))
        self.weight_v = nn.Parameter(torch.empty(embed_dim, embed_dim // groups, kernel))
        self.bias = nn.Parameter(torch.zeros(embed_dim))
        nn.init.normal_(self.weight_v, 0.0, math.sqrt(4.0 / (kernel * embed_dim)))
        with torch.no_grad():
            self.weight_g.copy_(self.weight_v.norm(dim=(0, 1), keepdim=True))

    def weight(self) -> torch.Tensor:
        return self.weight_v * (self.weight_g / self.weight_v.norm(dim=(0, 1), keepdim=True))

    def forward(self, x):
        """x [B, T, D] -> positional embedding [B, T, D]."""
        y = F.conv1d(x.transpose(1, 2), self.weight(), self.bias, padding=self.kernel // 2,
                     groups=self.groups)
        if self.kernel % 2 == 0:
            y = y[:, :, :-1]
        return F.gelu(y).transpose(1, 2)


def relative_position_buckets(length: int, num_buckets: int, max_distance: int, device=None):
    """Bidirectional log-spaced buckets of key-minus-query offsets, [length, length]."""
    pos = torch.arange(length, device=device)
    rel = pos[None, :] - pos[:, None]
    half = num_buckets // 2
    buckets = (rel > 0).long() * half
    rel = rel.abs()
    max_exact = half // 2
    large = max_exact + (torch.log(rel.float().clamp_min(1) / max_exact)
                         / math.log(max_distance / max_exact)
                         * (half - max_exact)).long()
    large = large.clamp_max(half - 1)
    return buckets + torch.where(rel < max_exact, rel, large)


class SelfAttention(nn.Module):
    """Multi-head self-attention over the kept heads ``kept_heads`` (original indices) with
    WavLM's gated relative position bias.

    The bias table is shared and holds all original heads; the GRU-style gate of head ``j``
    reads the ``j``-th chunk (``embed_dim / num_heads`` wide) of the layer input, so both are
    computed for original heads and then restricted to the kept ones.
    """

    def __init__(self, embed_dim, num_heads, kept_heads, gru_rel_pos):
        super().__init__()
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.kept_heads = list(kept_heads)
        inner = len(self.kept_heads) * self.head_dim
        self.q_proj = _linear(embed_dim, inner)
        self.k_proj = _linear(embed_dim, inner)
        self.v_proj = _linear(embed_dim, inner)
        self.out_proj = _linear(inner, embed_dim)
        self.gru_rel_pos = gru_rel_pos
        if gru_rel_pos:
            self.gru_rel_pos_linear = nn.Linear(self.head_dim, 8)
            self.gru_rel_pos_const = nn.Parameter(torch.ones(1, len(self.kept_heads), 1, 1))
        self.dropout = 0.0
        self.gate: HardConcrete | None = None
        self._kept_index = None

    @property
    def num_kept_heads(self) -> int:
        return len(self.kept_heads)

    def _kept(self, device):
        if self._kept_index is None or self._kept_index.device != device:
            self._kept_index = torch.tensor(self.kept_heads, dtype=torch.long, device=device)
        return self._kept_index

    def forward(self, x, position_bias=None, key_padding_mask=None):
        """x [B, T, D]; position_bias [H_orig, T, T] or None; key_padding_mask [B, T] (True =
        padding) or None."""
        bsz, length, _ = x.shape
        h = self.num_kept_heads
        if h == 0:
            return self.out_proj.bias.expand(bsz, length, self.embed_dim)
        mask = self.gate() if self.gate is not None else None
        q = self.q_proj(x).view(bsz, length, h, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(bsz, length, h, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(bsz, length, h, self.head_dim).transpose(1, 2)
        attn_bias = None
        if position_bias is not None:
            all_heads = h == self.num_heads
            kept = None if all_heads else self._kept(x.device)
            bias = position_bias if all_heads else position_bias.index_select(0, kept)
            if self.gru_rel_pos:
                chunks = x.view(bsz, length, self.num_heads, self.head_dim)
                if not all_heads:
                    chunks = chunks.index_select(2, kept)
                proj = self.gru_rel_pos_linear(chunks.transpose(1, 2))  # [B, h, T, 8]
                gate_a, gate_b = torch.sigmoid(proj.view(bsz, h, length, 2, 4).sum(-1)).chunk(
                    2, dim=-1)
                gate = gate_a * (gate_b * self.gru_rel_pos_const - 1.0) + 2.0  # [B, h, T, 1]
                attn_bias = gate * bias.unsqueeze(0)
            else:
                attn_bias = bias.unsqueeze(0)
        if key_padding_mask is not None:
            pad = torch.zeros(bsz, 1, 1, length, dtype=q.dtype, device=q.device)
            pad = pad.masked_fill(key_padding_mask[:, None, None, :], float("-inf"))
            attn_bias = pad if attn_bias is None else attn_bias + pad
        if attn_bias is not None:
            attn_bias = attn_bias.to(q.dtype)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_bias, dropout_p=self.dropout if self.training else 0.0)
        if mask is not None:
            out = out * mask.view(1, h, 1, 1)
        out = out.transpose(1, 2).reshape(bsz, length, h * self.head_dim)
        return self.out_proj(out)

    def prune_heads(self, head_mask: torch.Tensor) -> None:
        """Keep heads with non-zero ``head_mask`` [h], folding their values into out_proj."""
        index = head_mask.nonzero().squeeze(-1)
        unit_index = (index[:, None] * self.head_dim
                      + torch.arange(self.head_dim, device=index.device)).reshape(-1)
        for proj in (self.q_proj, self.k_proj, self.v_proj):
            _prune_linear(proj, unit_index, "output")
        _scale_input_columns(self.out_proj, head_mask.repeat_interleave(self.head_dim))
        _prune_linear(self.out_proj, unit_index, "input")
        if self.gru_rel_pos:
            self.gru_rel_pos_const = _select(self.gru_rel_pos_const, index, 1)
        self.kept_heads = [self.kept_heads[i] for i in index.tolist()]
        self._kept_index = None

    def scale_output(self, scale: float) -> None:
        with torch.no_grad():
            self.out_proj.weight.mul_(scale)
            self.out_proj.bias.mul_(scale)


class FeedForward(nn.Module):
    def __init__(self, embed_dim, ffn_dim):
        super().__init__()
        self.intermediate_dense = _linear(embed_dim, ffn_dim)
        self.output_dense = _linear(ffn_dim, embed_dim)
        self.dropout = nn.Dropout(0.0)
        self.gate: HardConcrete | None = None

    @property
    def ffn_dim(self) -> int:
        return self.intermediate_dense.out_features

    def forward(self, x):
        if self.ffn_dim == 0:
            return self.output_dense.bias.expand(*x.shape[:-1], x.shape[-1])
        h = self.dropout(F.gelu(self.intermediate_dense(x)))
        if self.gate is not None:
            h = h * self.gate()
        return self.output_dense(h)

    def prune_units(self, unit_mask: torch.Tensor) -> None:
        index = unit_mask.nonzero().squeeze(-1)
        _prune_linear(self.intermediate_dense, index, "output")
        _scale_input_columns(self.output_dense, unit_mask)
        _prune_linear(self.output_dense, index, "input")

    def scale_output(self, scale: float) -> None:
        with torch.no_grad():
            self.output_dense.weight.mul_(scale)
            self.output_dense.bias.mul_(scale)


class EncoderLayer(nn.Module):
    """Transformer layer; post-LN (Base) or pre-LN (Large).  A missing attention/FFN block
    (``None``) contributes nothing; ``attention_gate``/``ffn_gate`` scale a whole block."""

    def __init__(self, embed_dim, num_heads, kept_heads, ffn_dim, use_attention, use_ffn,
                 layer_norm_first, gru_rel_pos, eps):
        super().__init__()
        self.layer_norm_first = layer_norm_first
        self.attention = (SelfAttention(embed_dim, num_heads, kept_heads, gru_rel_pos)
                          if use_attention else None)
        self.layer_norm = nn.LayerNorm(embed_dim, eps=eps)
        self.feed_forward = FeedForward(embed_dim, ffn_dim) if use_ffn else None
        self.final_layer_norm = nn.LayerNorm(embed_dim, eps=eps)
        self.dropout = nn.Dropout(0.0)
        self.attention_gate: HardConcrete | None = None
        self.ffn_gate: HardConcrete | None = None

    def _attention(self, x, position_bias, key_padding_mask):
        out = self.attention(x, position_bias, key_padding_mask)
        if self.attention_gate is not None:
            out = out * self.attention_gate()
        return self.dropout(out)

    def _ffn(self, x):
        out = self.feed_forward(x)
        if self.ffn_gate is not None:
            out = out * self.ffn_gate()
        return self.dropout(out)

    def forward(self, x, position_bias=None, key_padding_mask=None):
        if self.layer_norm_first:
            if self.attention is not None:
                x = x + self._attention(self.layer_norm(x), position_bias, key_padding_mask)
            if self.feed_forward is not None:
                x = x + self._ffn(self.final_layer_norm(x))
            return x
        if self.attention is not None:
            x = x + self._attention(x, position_bias, key_padding_mask)
        x = self.layer_norm(x)
        if self.feed_forward is not None:
            x = x + self._ffn(x)
        return self.final_layer_norm(x)
