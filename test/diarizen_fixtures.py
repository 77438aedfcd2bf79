"""DiariZen-layout model directories for tests, without DiariZen's code or weights.

The key names and shapes below are read off DiariZen's public code
(``diarizen/models/eend/model_wavlm_conformer.py``, ``models/module/conformer.py`` and
``models/module/wav2vec2/components.py``): ``wavlm_model.*`` is its torchaudio-style pruned
WavLM (weight-normed positional conv stored as ``parametrizations.weight.original0/1``, the
relative-position table in layer 0's attention, one ``gru_rel_pos_const`` entry per original
head, ``dummy_weight`` after the CNN), then ``weight_sum``, ``proj``, ``lnorm``,
``conformer.conformer_layer.N.{ffn1,mha,conv,ffn2,ln_norm}`` and ``classifier``.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

# A tiny pruned WavLM in the arguments of DiariZen's ``wavlm_model`` (its checkpoints'
# ``config``): 3 layers of 4 heads (head_dim 8), layer 1 without attention, layer 2 with heads
# 1 and 3 only, varied FFN sizes, pruned CNN channels.
TINY_WAVLM = {
    "extractor_mode": "group_norm",
    "extractor_conv_layer_config": [[16, 10, 5], [12, 3, 2], [14, 3, 2], [10, 3, 2],
                                    [12, 3, 2], [9, 2, 2], [11, 2, 2]],
    "extractor_conv_bias": False,
    "encoder_embed_dim": 32,
    "encoder_projection_dropout": 0.1,
    "encoder_pos_conv_kernel": 8,
    "encoder_pos_conv_groups": 4,
    "encoder_num_layers": 3,
    "encoder_use_attention": [True, False, True],
    "encoder_use_feed_forward": [True, True, True],
    "encoder_total_num_heads": [4, 4, 4],
    "encoder_remaining_heads": [[0, 2, 3], [], [1, 3]],
    "encoder_num_buckets": 32,
    "encoder_max_distance": 64,
    "encoder_attention_dropout": 0.1,
    "encoder_ff_interm_features": [40, 24, 7],
    "encoder_ff_interm_dropout": 0.0,
    "encoder_dropout": 0.1,
    "encoder_layer_norm_first": False,
    "encoder_layer_drop": 0.05,
    "aux_num_out": None,
    "normalize_waveform": False,
    "extractor_prune_conv_channels": False,
    "encoder_prune_attention_heads": False,
    "encoder_prune_attention_layer": False,
    "encoder_prune_feed_forward_intermediate": False,
    "encoder_prune_feed_forward_layer": False,
}
# Large layout: pre-LN, layer-norm CNN, waveform normalisation
TINY_WAVLM_LARGE = {**TINY_WAVLM, "extractor_mode": "layer_norm",
                    "encoder_layer_norm_first": True, "normalize_waveform": True}

TINY_MODEL_ARGS = {
    "wavlm_src": "wavlm_tiny.bin",
    "wavlm_layer_num": 4,
    "wavlm_feat_dim": 32,
    "attention_in": 16,
    "ffn_hidden": 24,
    "num_head": 2,
    "num_layer": 2,
    "kernel_size": 5,
    "dropout": 0.1,
    "chunk_size": 2,
    "use_posi": False,
    "output_activate_function": False,
    "selected_channel": 0,
    "max_speakers_per_chunk": 3,
}

INFERENCE = {"seg_duration": 2, "segmentation_step": 0.5, "batch_size": 4,
             "apply_median_filtering": True}
CLUSTERING = {"method": "VBxClustering", "min_speakers": 1, "max_speakers": 5,
              "ahc_criterion": "distance", "ahc_threshold": 0.6, "Fa": 0.07, "Fb": 0.8,
              "lda_dim": 128, "max_iters": 20}


def released_base_s80() -> tuple[dict, dict]:
    """(WavLM config, model args) of diarizen-wavlm-base-s80-md in DiariZen's format: the
    released per-layer structure (``base_plus_s80``) and backend sizes."""
    from espnet_prune.wavlm.config import wavlm_config

    s80 = wavlm_config("base_plus_s80")
    wavlm = {**TINY_WAVLM, "extractor_conv_layer_config": [
        [c, k, s] for c, k, s in zip(s80.conv_channels, s80.conv_kernels, s80.conv_strides)],
        "encoder_embed_dim": 768, "encoder_pos_conv_kernel": 128, "encoder_pos_conv_groups": 16,
        "encoder_num_layers": 12, "encoder_use_attention": s80.use_attention,
        "encoder_use_feed_forward": [True] * 12, "encoder_total_num_heads": [12] * 12,
        "encoder_remaining_heads": s80.kept_heads, "encoder_num_buckets": 320,
        "encoder_max_distance": 800, "encoder_ff_interm_features": s80.ffn_dims}
    args = {**TINY_MODEL_ARGS, "wavlm_src": "wavlm_base_s80_md", "wavlm_layer_num": 13,
            "wavlm_feat_dim": 768, "attention_in": 256, "ffn_hidden": 1024, "num_head": 4,
            "num_layer": 4, "kernel_size": 31, "chunk_size": 8, "max_speakers_per_chunk": 4}
    return wavlm, args


def wavlm_shapes(w: dict) -> dict[str, tuple]:
    shapes = {}
    p = "wavlm_model.feature_extractor.conv_layers"
    c_in = 1
    for i, (c, k, _) in enumerate(w["extractor_conv_layer_config"]):
        shapes[f"{p}.{i}.conv.weight"] = (c, c_in, k)
        if w["extractor_conv_bias"]:
            shapes[f"{p}.{i}.conv.bias"] = (c,)
        if w["extractor_mode"] == "layer_norm" or i == 0:
            shapes[f"{p}.{i}.layer_norm.weight"] = (c,)
            shapes[f"{p}.{i}.layer_norm.bias"] = (c,)
        c_in = c
    shapes["wavlm_model.feature_extractor.dummy_weight"] = (c_in,)
    d = w["encoder_embed_dim"]
    p = "wavlm_model.encoder.feature_projection"
    shapes.update({f"{p}.layer_norm.weight": (c_in,), f"{p}.layer_norm.bias": (c_in,),
                   f"{p}.projection.weight": (d, c_in), f"{p}.projection.bias": (d,)})
    p = "wavlm_model.encoder.transformer"
    k, g = w["encoder_pos_conv_kernel"], w["encoder_pos_conv_groups"]
    shapes.update({f"{p}.pos_conv_embed.conv.bias": (d,),
                   f"{p}.pos_conv_embed.conv.parametrizations.weight.original0": (1, 1, k),
                   f"{p}.pos_conv_embed.conv.parametrizations.weight.original1": (d, d // g, k),
                   f"{p}.layer_norm.weight": (d,), f"{p}.layer_norm.bias": (d,)})
    for i in range(w["encoder_num_layers"]):
        q = f"{p}.layers.{i}"
        total = w["encoder_total_num_heads"][i]
        head_dim = d // total
        if w["encoder_use_attention"][i]:
            inner = len(w["encoder_remaining_heads"][i]) * head_dim
            for name in ("k_proj", "v_proj", "q_proj"):
                shapes[f"{q}.attention.{name}.weight"] = (inner, d)
                shapes[f"{q}.attention.{name}.bias"] = (inner,)
            shapes[f"{q}.attention.out_proj.weight"] = (d, inner)
            shapes[f"{q}.attention.out_proj.bias"] = (d,)
            if i == 0:
                shapes[f"{q}.attention.rel_attn_embed.weight"] = (w["encoder_num_buckets"], total)
            shapes[f"{q}.attention.gru_rel_pos_linear.weight"] = (8, head_dim)
            shapes[f"{q}.attention.gru_rel_pos_linear.bias"] = (8,)
            shapes[f"{q}.attention.gru_rel_pos_const"] = (1, total, 1, 1)
        for norm in ("layer_norm", "final_layer_norm"):
            shapes[f"{q}.{norm}.weight"] = (d,)
            shapes[f"{q}.{norm}.bias"] = (d,)
        if w["encoder_use_feed_forward"][i]:
            f = w["encoder_ff_interm_features"][i]
            shapes.update({f"{q}.feed_forward.intermediate_dense.weight": (f, d),
                           f"{q}.feed_forward.intermediate_dense.bias": (f,),
                           f"{q}.feed_forward.output_dense.weight": (d, f),
                           f"{q}.feed_forward.output_dense.bias": (d,)})
    return shapes


def backend_shapes(a: dict, num_layers_wavlm: int) -> dict[str, tuple]:
    d, n, ff, k = a["wavlm_feat_dim"], a["attention_in"], a["ffn_hidden"], a["kernel_size"]
    speakers, per_frame = a["max_speakers_per_chunk"], a.get("max_speakers_per_frame", 2)
    classes = sum(math.comb(speakers, i) for i in range(per_frame + 1))
    shapes = {"weight_sum.weight": (1, num_layers_wavlm + 1),
              "proj.weight": (n, d), "proj.bias": (n,), "lnorm.weight": (n,), "lnorm.bias": (n,)}
    for j in range(a["num_layer"]):
        p = f"conformer.conformer_layer.{j}"
        for ffn in ("ffn1", "ffn2"):
            shapes.update({f"{p}.{ffn}.ln_norm.weight": (n,), f"{p}.{ffn}.ln_norm.bias": (n,),
                           f"{p}.{ffn}.w_1.weight": (ff, n), f"{p}.{ffn}.w_1.bias": (ff,),
                           f"{p}.{ffn}.w_2.weight": (n, ff), f"{p}.{ffn}.w_2.bias": (n,)})
        shapes.update({f"{p}.mha.ln_norm.weight": (n,), f"{p}.mha.ln_norm.bias": (n,)})
        for lin in ("linearQ", "linearK", "linearV", "linearO"):
            shapes[f"{p}.mha.mha.{lin}.weight"] = (n, n)
            shapes[f"{p}.mha.mha.{lin}.bias"] = (n,)
        shapes.update({
            f"{p}.conv.ln_norm.weight": (n,), f"{p}.conv.ln_norm.bias": (n,),
            f"{p}.conv.pointwise_conv1.weight": (2 * n, n, 1),
            f"{p}.conv.pointwise_conv1.bias": (2 * n,),
            f"{p}.conv.depthwise_conv.weight": (n, 1, k), f"{p}.conv.depthwise_conv.bias": (n,),
            f"{p}.conv.bn_norm.weight": (n,), f"{p}.conv.bn_norm.bias": (n,),
            f"{p}.conv.bn_norm.running_mean": (n,), f"{p}.conv.bn_norm.running_var": (n,),
            f"{p}.conv.bn_norm.num_batches_tracked": (),
            f"{p}.conv.pointwise_conv2.weight": (n, n, 1), f"{p}.conv.pointwise_conv2.bias": (n,),
            f"{p}.ln_norm.weight": (n,), f"{p}.ln_norm.bias": (n,)})
    shapes["classifier.weight"] = (classes, n)
    shapes["classifier.bias"] = (classes,)
    return shapes


def diarizen_shapes(wavlm: dict, args: dict) -> dict[str, tuple]:
    """Every key of DiariZen's Model state dict and its shape."""
    return {**wavlm_shapes(wavlm), **backend_shapes(args, wavlm["encoder_num_layers"])}


def distinct_state(shapes: dict[str, tuple], seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors, all values different (so each can be found again after the import);
    positive where a variance or a norm is expected."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for i, (key, shape) in enumerate(shapes.items()):
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(1000 + i, dtype=torch.long)
        elif key.endswith(("running_var", "original0", "weight_g")):
            state[key] = 0.5 + torch.rand(shape, generator=gen)
        elif key.endswith(("layer_norm.weight", "ln_norm.weight", "lnorm.weight",
                           "bn_norm.weight")):
            state[key] = 1.0 + 0.1 * torch.randn(shape, generator=gen)
        else:  # fan-in scaled, so that activations stay moderate in full-size models too
            fan_in = math.prod(shape[1:]) if len(shape) > 1 else 4
            state[key] = torch.randn(shape, generator=gen) / math.sqrt(fan_in)
    return state


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def write_config_toml(path: Path, args: dict, inference=INFERENCE, clustering=CLUSTERING):
    lines = ["[inference]", "[inference.args]"]
    lines += [f"{k} = {toml_value(v)}" for k, v in inference.items()]
    lines += ["", "[clustering]", "[clustering.args]"]
    lines += [f"{k} = {toml_value(v)}" for k, v in clustering.items()]
    lines += ["", "[model]", 'path = "diarizen.models.eend.model_wavlm_conformer.Model"',
              "[model.args]"]
    lines += [f"{k} = {toml_value(v)}" for k, v in args.items()]
    path.write_text("\n".join(lines) + "\n")


def make_diarizen_dir(folder: Path, wavlm: dict = TINY_WAVLM, args: dict = TINY_MODEL_ARGS,
                      state: dict | None = None, seed: int = 0) -> Path:
    """``folder`` with config.toml, pytorch_model.bin and (for a file ``wavlm_src``) the WavLM
    checkpoint that names the pruned structure, as DiariZen's ``load_wavlm`` reads it."""
    folder.mkdir(parents=True, exist_ok=True)
    if state is None:
        state = distinct_state(diarizen_shapes(wavlm, args), seed)
    torch.save(state, folder / "pytorch_model.bin")
    if args["wavlm_src"].endswith(".bin"):
        torch.save({"config": wavlm, "state_dict": {}}, folder / args["wavlm_src"])
    write_config_toml(folder / "config.toml", args)
    return folder


def write_vbx_files(folder: Path, dim: int = 256, lda_dim: int = 128, seed: int = 0) -> Path:
    """``folder/plda/{xvec_transform.npz, plda.npz}`` as DiariZen's VBx reads them (random,
    well-conditioned)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    plda = folder / "plda"
    plda.mkdir(parents=True, exist_ok=True)
    np.savez(plda / "xvec_transform.npz", mean1=0.1 * rng.normal(size=dim),
             mean2=0.1 * rng.normal(size=lda_dim),
             lda=rng.normal(size=(dim, lda_dim)) / np.sqrt(dim))
    tr = np.eye(lda_dim) + 0.1 * rng.normal(size=(lda_dim, lda_dim))
    np.savez(plda / "plda.npz", mu=0.1 * rng.normal(size=lda_dim), tr=tr,
             psi=np.sort(rng.uniform(0.1, 5.0, size=lda_dim))[::-1])
    return plda


def wespeaker_checkpoint(folder: Path) -> Path:
    """A random WeSpeaker ResNet34 in pyannote's distribution layout."""
    from espnet_prune.infer.wespeaker import WeSpeakerResNet34

    torch.manual_seed(0)
    state = WeSpeakerResNet34().state_dict()
    folder.mkdir(parents=True)
    torch.save({"state_dict": state,  # already "resnet.*", as in pyannote's checkpoint
                "pyannote.audio": {"architecture": {
                    "module": "pyannote.audio.models.embedding.wespeaker",
                    "class": "WeSpeakerResNet34"}}}, folder / "pytorch_model.bin")
    return folder / "pytorch_model.bin"
