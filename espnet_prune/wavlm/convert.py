"""Conversion of Hugging Face (WavLMModel / HubertModel / Wav2Vec2Model directories) and
original/s3prl ``{"cfg", "model"}`` WavLM checkpoints into :class:`WavLM`.

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
from espnet_prune.utils.state_dict import load_state_dict_strict
from espnet_prune.wavlm.checkpoint import FORMAT, read_checkpoint, save_wavlm
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
