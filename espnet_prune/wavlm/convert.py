"""Conversion of Hugging Face (WavLMModel / HubertModel / Wav2Vec2Model directories) and
original/s3prl ``{"cfg", "model"}`` WavLM checkpoints into :class:`WavLM`; the config and key
layout of torchaudio's / DPHuBERT's WavLM (what DiariZen's checkpoints use) for
:mod:`espnet_prune.zoo.diarizen`.

Every source key must map onto a model key and every model key must be filled; anything else
is a ``CheckpointError`` naming the file and the key.  Only training-only tensors that the
model does not have (the mask embedding) are dropped, explicitly.
"""

from __future__ import annotations

import ast
import json
import os
import re

from espnet_prune.errors import CheckpointError, ConfigError
from espnet_prune.utils.checkpoint import read_checkpoint
from espnet_prune.utils.state_dict import load_state_dict_strict
from espnet_prune.wavlm.checkpoint import FORMAT, save_wavlm
from espnet_prune.wavlm.config import WavLMConfig
from espnet_prune.wavlm.model import WavLM

HF_MODEL_TYPES = ("wavlm", "hubert", "wav2vec2")
HF_DROPPED = ("masked_spec_embed",)
S3PRL_DROPPED = ("mask_emb",)


def _require(cond: bool, source, message: str) -> None:
    if not cond:
        raise CheckpointError(f"{source}: {message}")


# ------------------------------------------------------------------ Hugging Face
def config_from_hf(hf: dict, source) -> WavLMConfig:
    model_type = hf.get("model_type")
    _require(model_type in HF_MODEL_TYPES, source,
             f"key 'model_type' is {model_type!r}, expected one of {HF_MODEL_TYPES}")
    for key in ("feat_extract_activation", "hidden_act"):
        _require(hf.get(key, "gelu") == "gelu", source, f"key {key!r} = {hf.get(key)!r}: only "
                 "gelu is supported")
    _require(not hf.get("add_adapter", False), source, "key 'add_adapter' = true is not supported")
    norm = hf.get("feat_extract_norm", "group")
    _require(norm in ("group", "layer"), source, f"key 'feat_extract_norm' = {norm!r}")
    is_wavlm = model_type == "wavlm"
    for key in ("num_hidden_layers", "num_attention_heads", "hidden_size", "intermediate_size"):
        _require(key in hf, source, f"missing key {key!r}")
        _require(isinstance(hf[key], int) and not isinstance(hf[key], bool) and hf[key] > 0,
                 source, f"key {key!r} = {hf[key]!r}: expected a positive integer")
    n, heads = hf["num_hidden_layers"], hf["num_attention_heads"]
    try:
        return WavLMConfig(
            conv_channels=list(hf["conv_dim"]), conv_kernels=list(hf["conv_kernel"]),
            conv_strides=list(hf["conv_stride"]), conv_bias=bool(hf.get("conv_bias", False)),
            extractor_norm=norm,
            feature_projection_layer_norm=bool(hf.get("feat_proj_layer_norm", True)),
            embed_dim=hf["hidden_size"], num_layers=n, num_heads=heads,
            ffn_dims=[hf["intermediate_size"]] * n,
            layer_norm_first=bool(hf.get("do_stable_layer_norm", False)),
            pos_conv_kernel=hf["num_conv_pos_embeddings"],
            pos_conv_groups=hf["num_conv_pos_embedding_groups"],
            relative_position_bias=is_wavlm, gru_rel_pos=is_wavlm,
            num_buckets=hf.get("num_buckets", 320), max_distance=hf.get("max_bucket_distance", 800),
            layer_norm_eps=hf.get("layer_norm_eps", 1e-5))
    except KeyError as exc:
        raise CheckpointError(f"{source}: missing key {exc.args[0]!r}") from None
    except (TypeError, ValueError, ConfigError) as exc:
        raise CheckpointError(f"{source}: bad config: {exc}") from None


def _read_json(path) -> dict:
    """A JSON object from ``path``; malformed JSON is a one-line error with line and column."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON "
                              f"({exc.msg})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: cannot read ({exc})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object at top level, got "
                              f"{type(data).__name__}")
    return data


def _hf_key(key: str) -> str | None:
    """HF base-model key -> our key (None: dropped on purpose)."""
    if key in HF_DROPPED:
        return None
    key = key.replace(".parametrizations.weight.original0", ".weight_g")
    key = key.replace(".parametrizations.weight.original1", ".weight_v")
    key = re.sub(r"^feature_extractor\.conv_layers\.(\d+)\.layer_norm\.",
                 r"feature_extractor.conv_layers.\1.norm.", key)
    key = key.replace("encoder.pos_conv_embed.conv.", "encoder.pos_conv.")
    key = key.replace("encoder.layers.0.attention.rel_attn_embed.", "encoder.rel_attn_embed.")
    return key


def _read_hf_weights(path: str) -> tuple[dict, str]:
    st = os.path.join(path, "model.safetensors")
    if os.path.isfile(st):
        from safetensors.torch import load_file

        if os.path.getsize(st) == 0:
            raise CheckpointError(f"{st}: file is empty (0 bytes; an interrupted download?)")
        try:
            return load_file(st), st
        except Exception as exc:  # SafetensorError, OSError, ...
            message = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise CheckpointError(f"{st}: cannot read safetensors file ({message})") from None
    bin_path = os.path.join(path, "pytorch_model.bin")
    if os.path.isfile(bin_path):
        weights = read_checkpoint(bin_path, "Hugging Face weights file")
        if not isinstance(weights, dict):
            raise CheckpointError(f"{bin_path}: expected a state dict, got "
                                  f"{type(weights).__name__}")
        return weights, bin_path
    raise CheckpointError(f"{path}: no model.safetensors or pytorch_model.bin (sharded "
                          "checkpoints are not supported)")


def convert_hf(path) -> WavLM:
    """A Hugging Face directory with ``config.json`` and the base model's weights."""
    cfg_path = os.path.join(path, "config.json")
    if not os.path.isfile(cfg_path):
        raise CheckpointError(f"{cfg_path}: no such file (not a Hugging Face model directory)")
    hf = _read_json(cfg_path)
    config = config_from_hf(hf, cfg_path)
    pre_path = os.path.join(path, "preprocessor_config.json")
    if os.path.isfile(pre_path):
        config.normalize_waveform = bool(_read_json(pre_path).get("do_normalize", False))
    weights, source = _read_hf_weights(path)
    prefix = hf["model_type"] + "."
    if weights and all(k.startswith(prefix) for k in weights):
        weights = {k[len(prefix):]: v for k, v in weights.items()}
    state = {}
    for key, value in weights.items():
        new = _hf_key(key)
        if new is not None:
            state[new] = value
    model = WavLM(config)
    load_state_dict_strict(model, state, source)
    return model.eval()


# ------------------------------------------------------------------ s3prl / original
def _eval_layer_spec(spec: str, source) -> list:
    """Evaluate e.g. ``"[(512,10,5)] + [(512,3,2)] * 4"`` without ``eval``."""
    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [ev(e) for e in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
            left, right = ev(node.left), ev(node.right)
            return left + right if isinstance(node.op, ast.Add) else left * right
        raise ValueError(ast.dump(node))

    try:
        layers = ev(ast.parse(spec, mode="eval"))
        return [(int(c), int(k), int(s)) for c, k, s in layers]
    except (SyntaxError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{source}: cannot parse cfg['conv_feature_layers'] = "
                              f"{spec!r}") from exc


def config_from_s3prl(cfg: dict, source) -> WavLMConfig:
    layers = _eval_layer_spec(cfg.get("conv_feature_layers",
                                      "[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2"), source)
    mode = cfg.get("extractor_mode", "default")
    _require(mode in ("default", "layer_norm"), source, f"cfg['extractor_mode'] = {mode!r}")
    _require(cfg.get("activation_fn", "gelu") == "gelu", source, "only gelu is supported")
    n = cfg.get("encoder_layers", 12)
    rel = bool(cfg.get("relative_position_embedding", False))
    try:
        return WavLMConfig(
            conv_channels=[c for c, _, _ in layers], conv_kernels=[k for _, k, _ in layers],
            conv_strides=[s for _, _, s in layers], conv_bias=bool(cfg.get("conv_bias", False)),
            extractor_norm="group" if mode == "default" else "layer",
            embed_dim=cfg.get("encoder_embed_dim", 768), num_layers=n,
            num_heads=cfg.get("encoder_attention_heads", 12),
            ffn_dims=[cfg.get("encoder_ffn_embed_dim", 3072)] * n,
            layer_norm_first=bool(cfg.get("layer_norm_first", False)),
            pos_conv_kernel=cfg.get("conv_pos", 128),
            pos_conv_groups=cfg.get("conv_pos_groups", 16),
            relative_position_bias=rel, gru_rel_pos=rel and bool(cfg.get("gru_rel_pos", False)),
            num_buckets=cfg.get("num_buckets", 320), max_distance=cfg.get("max_distance", 1280),
            normalize_waveform=bool(cfg.get("normalize", False)))
    except ConfigError as exc:
        raise CheckpointError(f"{source}: bad cfg: {exc}") from exc


_S3PRL_RULES = [
    (r"^feature_extractor\.conv_layers\.(\d+)\.0\.", r"feature_extractor.conv_layers.\1.conv."),
    (r"^feature_extractor\.conv_layers\.(\d+)\.2\.1\.", r"feature_extractor.conv_layers.\1.norm."),
    (r"^feature_extractor\.conv_layers\.(\d+)\.2\.", r"feature_extractor.conv_layers.\1.norm."),
    (r"^layer_norm\.", "feature_projection.layer_norm."),
    (r"^post_extract_proj\.", "feature_projection.projection."),
    (r"^encoder\.pos_conv\.0\.", "encoder.pos_conv."),
    (r"^encoder\.layers\.0\.self_attn\.relative_attention_bias\.", "encoder.rel_attn_embed."),
    (r"\.self_attn\.grep_linear\.", ".attention.gru_rel_pos_linear."),
    (r"\.self_attn\.grep_a$", ".attention.gru_rel_pos_const"),
    (r"\.self_attn\.", ".attention."),
    (r"\.self_attn_layer_norm\.", ".layer_norm."),
    (r"\.fc1\.", ".feed_forward.intermediate_dense."),
    (r"\.fc2\.", ".feed_forward.output_dense."),
]


def _s3prl_key(key: str) -> str | None:
    if key in S3PRL_DROPPED:
        return None
    for pattern, repl in _S3PRL_RULES:
        key = re.sub(pattern, repl, key)
    return key


def convert_s3prl(path) -> WavLM:
    """An original/s3prl WavLM checkpoint ``{"cfg": {...}, "model": state_dict}``."""
    data = read_checkpoint(path, "WavLM checkpoint")
    if isinstance(data, dict) and data.get("format") == FORMAT:
        raise CheckpointError(f"{path}: already an espnet_prune WavLM checkpoint (format "
                              f"{FORMAT!r}); nothing to convert")
    _require(isinstance(data, dict) and isinstance(data.get("cfg"), dict)
             and isinstance(data.get("model"), dict), path,
             "expected a dict with keys 'cfg' (dict) and 'model' (state dict)")
    config = config_from_s3prl(data["cfg"], path)
    if config.conv_channels[-1] == config.embed_dim and "post_extract_proj.weight" not in \
            data["model"]:
        raise CheckpointError(f"{path}: models without post_extract_proj are not supported")
    state = {}
    for key, value in data["model"].items():
        new = _s3prl_key(key)
        if new is not None:
            state[new] = value
    model = WavLM(config)
    load_state_dict_strict(model, state, path)
    return model.eval()


def convert(path) -> WavLM:
    """Dispatch on the source: a directory is Hugging Face, a file is ``{"cfg","model"}``."""
    if os.path.isdir(path):
        return convert_hf(path)
    if os.path.isfile(path):
        return convert_s3prl(path)
    raise CheckpointError(f"{path}: no such file or directory")


def convert_file(source: str, output: str) -> dict:
    """``wavlm_convert``: :func:`convert` ``source`` and save it as ``output`` (checked before
    the slow conversion); prints and returns a one-line JSON summary."""
    from espnet_prune.utils.io import check_output_file

    check_output_file(output, make_parents=True)  # before the (slow) conversion
    model = convert(source)
    save_wavlm(model, output)
    summary = {"output": output, "params": model.num_params(),
               "num_layers": model.config.num_layers, "embed_dim": model.config.embed_dim}
    print(json.dumps(summary))
    return summary


# ------------------------------------------------- torchaudio / DPHuBERT layout (DiariZen's WavLM)
_KWARGS_REQUIRED = (
    "extractor_mode", "extractor_conv_layer_config", "extractor_conv_bias", "encoder_embed_dim",
    "encoder_pos_conv_kernel", "encoder_pos_conv_groups", "encoder_num_layers",
    "encoder_use_attention", "encoder_use_feed_forward", "encoder_total_num_heads",
    "encoder_remaining_heads", "encoder_num_buckets", "encoder_max_distance",
    "encoder_ff_interm_features", "encoder_layer_norm_first", "normalize_waveform")
_KWARGS_DROPOUT = {"encoder_projection_dropout": "feat_proj_dropout",
                   "encoder_attention_dropout": "attention_dropout",
                   "encoder_ff_interm_dropout": "activation_dropout",
                   "encoder_dropout": "hidden_dropout"}
# accepted when off: pruning gates, an ASR head, and LayerDrop (which DiariZen's hidden-state
# path, ``extract_features``, never applies)
_KWARGS_OFF = ("extractor_prune_conv_channels", "encoder_prune_attention_heads",
               "encoder_prune_attention_layer", "encoder_prune_feed_forward_intermediate",
               "encoder_prune_feed_forward_layer", "use_layerwise_prune", "aux_num_out")
_KWARGS_IGNORED = ("encoder_layer_drop", "limit_l", "limit_r", "temperature")


def config_from_torchaudio(kwargs: dict, source) -> WavLMConfig:
    """Our ``WavLMConfig`` from the arguments of torchaudio's / DPHuBERT's ``wavlm_model`` (the
    ``config`` of DPHuBERT and DiariZen WavLM checkpoints, pruned ones included)."""
    missing = [k for k in _KWARGS_REQUIRED if k not in kwargs]
    if missing:
        raise ConfigError(f"{source}: WavLM config lacks {missing[0]!r}")
    known = set(_KWARGS_REQUIRED) | set(_KWARGS_DROPOUT) | set(_KWARGS_OFF) | set(_KWARGS_IGNORED)
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise ConfigError(f"{source}: unknown WavLM config keys {unknown}")
    for key in _KWARGS_OFF:
        if kwargs.get(key) not in (None, False):
            raise ConfigError(f"{source}: WavLM config {key} = {kwargs[key]!r}; only a pruned "
                              "model without gates or heads can be imported")
    mode = kwargs["extractor_mode"]
    if mode not in ("group_norm", "layer_norm"):
        raise ConfigError(f"{source}: extractor_mode = {mode!r}")
    heads = set(kwargs["encoder_total_num_heads"])
    if len(heads) != 1:
        raise ConfigError(f"{source}: encoder_total_num_heads differ between layers {heads}")
    use_att = [bool(u) for u in kwargs["encoder_use_attention"]]
    use_ffn = [bool(u) for u in kwargs["encoder_use_feed_forward"]]
    layers = [tuple(int(v) for v in layer) for layer in kwargs["extractor_conv_layer_config"]]
    try:
        return WavLMConfig(
            conv_channels=[c for c, _, _ in layers], conv_kernels=[k for _, k, _ in layers],
            conv_strides=[s for _, _, s in layers], conv_bias=bool(kwargs["extractor_conv_bias"]),
            extractor_norm="group" if mode == "group_norm" else "layer",
            extractor_output_scale=True, embed_dim=int(kwargs["encoder_embed_dim"]),
            num_layers=int(kwargs["encoder_num_layers"]), num_heads=heads.pop(),
            kept_heads=[list(h) if u else [] for h, u in
                        zip(kwargs["encoder_remaining_heads"], use_att)],
            ffn_dims=[int(f) if u else 0 for f, u in
                      zip(kwargs["encoder_ff_interm_features"], use_ffn)],
            use_attention=use_att, use_ffn=use_ffn,
            layer_norm_first=bool(kwargs["encoder_layer_norm_first"]),
            pos_conv_kernel=int(kwargs["encoder_pos_conv_kernel"]),
            pos_conv_groups=int(kwargs["encoder_pos_conv_groups"]),
            num_buckets=int(kwargs["encoder_num_buckets"]),
            max_distance=int(kwargs["encoder_max_distance"]),
            normalize_waveform=bool(kwargs["normalize_waveform"]),
            **{ours: float(kwargs.get(theirs, 0.0)) for theirs, ours in _KWARGS_DROPOUT.items()})
    except (ConfigError, TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: WavLM config not expressible: {exc}") from None


TORCHAUDIO_RULES = [
    (r"^feature_extractor\.conv_layers\.(\d+)\.conv\.", r"feature_extractor.conv_layers.\1.conv."),
    (r"^feature_extractor\.conv_layers\.(\d+)\.layer_norm\.",
     r"feature_extractor.conv_layers.\1.norm."),
    (r"^feature_extractor\.dummy_weight$", "feature_extractor.output_scale"),
    (r"^encoder\.feature_projection\.", "feature_projection."),
    (r"^encoder\.transformer\.pos_conv_embed\.conv\.parametrizations\.weight\.original0$",
     "encoder.pos_conv.weight_g"),
    (r"^encoder\.transformer\.pos_conv_embed\.conv\.parametrizations\.weight\.original1$",
     "encoder.pos_conv.weight_v"),
    (r"^encoder\.transformer\.pos_conv_embed\.conv\.(weight_g|weight_v|bias)$",
     r"encoder.pos_conv.\1"),
    (r"^encoder\.transformer\.layer_norm\.", "encoder.layer_norm."),
    (r"^encoder\.transformer\.layers\.0\.attention\.rel_attn_embed\.", "encoder.rel_attn_embed."),
    (r"^encoder\.transformer\.layers\.(\d+)\.attention\.(q_proj|k_proj|v_proj|out_proj|"
     r"gru_rel_pos_linear)\.", r"encoder.layers.\1.attention.\2."),
    (r"^encoder\.transformer\.layers\.(\d+)\.attention\.gru_rel_pos_const$",
     r"encoder.layers.\1.attention.gru_rel_pos_const"),
    (r"^encoder\.transformer\.layers\.(\d+)\.(layer_norm|final_layer_norm)\.",
     r"encoder.layers.\1.\2."),
    (r"^encoder\.transformer\.layers\.(\d+)\.feed_forward\.(intermediate_dense|output_dense)\.",
     r"encoder.layers.\1.feed_forward.\2."),
]


def first_rule(rules, key: str) -> str | None:
    """``key`` rewritten by the first ``(pattern, replacement)`` rule that matches it (None: no
    rule matches)."""
    for pattern, repl in rules:
        new, count = re.subn(pattern, repl, key)
        if count:
            return new
    return None


def torchaudio_key(key: str) -> str | None:
    """Key of torchaudio's / DPHuBERT's WavLM → our :class:`WavLM` key (None: no rule)."""
    return first_rule(TORCHAUDIO_RULES, key)
