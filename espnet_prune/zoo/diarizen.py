"""Import a released DiariZen model directory as an ESPnet exp dir of our powerset model.

A DiariZen model directory (as on the Hugging Face hub, e.g. BUT-FIT/diarizen-wavlm-base-s80-md)
holds ``config.toml`` (``[model]`` = DiariZen's WavLM + Conformer class and its arguments,
``[inference.args]``, ``[clustering.args]``), ``pytorch_model.bin`` (that model's state dict)
and ``plda/`` (VBx's ``xvec_transform.npz`` and ``plda.npz``, converted to our PLDA ``.npz`` by
:func:`convert_plda`).  DiariZen's network is ours: pruned WavLM → bias-free layer weighted sum
→ Linear + LayerNorm → macaron Conformer → Linear → powerset log-softmax.  Two details of
ESPnet's Conformer differ and are switched off in the imported ``encoder_conf``:
``final_norm: false`` (ESPnet adds a LayerNorm after the last block; DiariZen's blocks end in
their own) and ``layer_norm_eps: 1e-5`` (ESPnet's LayerNorms use 1e-12).  What ours cannot
express (Conformer relative positions ``use_posi``, an output activation, a WavLM whose first
layer has no attention) is one :class:`ConfigError`, never an approximation.

Every source tensor is mapped and every model tensor filled; anything else is one
:class:`CheckpointError` naming the key.  The only values not carried over are the gate
constants (``gru_rel_pos_const``) of attention heads that DiariZen's pruning removed: it computes
them for all original heads and then discards the removed heads' results.
"""

from __future__ import annotations

import copy
import logging
import re
import tomllib
from pathlib import Path

from espnet_prune.errors import CheckpointError, ConfigError

logger = logging.getLogger(__name__)

MODEL_CLASS = "diarizen.models.eend.model_wavlm_conformer.Model"
CONFIG_FILE = "config.toml"
WEIGHTS_FILE = "pytorch_model.bin"
# what the import writes into the exp dir
MODEL_FILE = "model.pth"
TRAIN_CONFIG_FILE = "config.yaml"
INFERENCE_CONFIG_FILE = "inference.yaml"
FINETUNE_CONFIG_FILE = "finetune.yaml"
# the imported WavLM alone (espnet_prune.wavlm format), whose size and speed wavlm_stats and
# wavlm_bench report (recipe stage 8)
WAVLM_FILE = "wavlm.pt"

# DiariZen's Model defaults (model_wavlm_conformer.Model.__init__) for arguments a config omits
MODEL_DEFAULTS = {
    "wavlm_src": "wavlm_base", "wavlm_layer_num": 13, "wavlm_feat_dim": 768,
    "attention_in": 256, "ffn_hidden": 1024, "num_head": 4, "num_layer": 4,
    "kernel_size": 31, "dropout": 0.1, "use_posi": False, "output_activate_function": False,
    "max_speakers_per_chunk": 4, "max_speakers_per_frame": 2, "chunk_size": 5,
    "num_channels": 8, "selected_channel": 0, "sample_rate": 16000,
}

# Per-layer structure of DiariZen's WavLM Large pruned to 80 % sparsity ("wavlm_large_s80_md",
# diarizen/models/module/wavlm_config.py); the Base one is our ``base_plus_s80`` preset.
_LARGE_S80_CONV = [512, 153, 224, 255, 302, 368, 211]
_LARGE_S80_KEPT_HEADS = [
    [1, 2, 4, 5, 6], [9, 10, 14], [0, 1, 2, 4, 5, 7], [1, 4, 7, 12, 13, 14], [0, 2, 3, 4, 13],
    [1, 7, 13, 14, 15], [11, 13, 15], [2, 3, 4, 8, 15], [2, 5, 6, 15], [], [0, 1], [1, 3, 5, 12],
    [], [4, 7, 11], [6, 9], [11], [], [], [14], [5, 15], [0, 2, 8, 11, 13, 15],
    [0, 1, 3, 4, 5, 6, 7, 10, 13], [0, 1, 3, 6, 7, 9, 10, 11, 12, 14], [1, 2, 3, 4, 7, 13, 14, 15],
]
_LARGE_S80_FFN = [1092, 925, 759, 646, 745, 615, 684, 958, 286, 294, 406, 377, 463, 542, 298,
                  236, 96, 104, 134, 211, 473, 1011, 1770, 1316]


def named_wavlm_config(name: str):
    """The ``WavLMConfig`` of a WavLM structure that DiariZen's ``wavlm_src`` names.

    DiariZen keeps a feature-extractor output scale (``dummy_weight``) in every model, so all
    structures have ``extractor_output_scale``; dropouts are DiariZen's (= the reference's)."""
    from espnet_prune.wavlm.config import wavlm_config

    key = str(name).lower()
    if key == "wavlm_base":
        config = wavlm_config("base")
    elif key == "wavlm_large":
        config = wavlm_config("large")
    elif key == "wavlm_base_s80_md":
        config = wavlm_config("base_plus_s80")
    elif key == "wavlm_large_s80_md":
        config = wavlm_config("large")
        config.conv_channels = list(_LARGE_S80_CONV)
        config.kept_heads = copy.deepcopy(_LARGE_S80_KEPT_HEADS)
        config.use_attention = [len(h) > 0 for h in _LARGE_S80_KEPT_HEADS]
        config.ffn_dims = list(_LARGE_S80_FFN)
    else:
        raise ConfigError(
            f"[model.args] wavlm_src = {name!r}: not a WavLM structure this import knows "
            "(wavlm_base, wavlm_large, wavlm_base_s80_md, wavlm_large_s80_md); the kept "
            "attention heads of a pruned WavLM cannot be read from the weights' shapes")
    config.extractor_output_scale = True
    config.validate()
    return config


def wavlm_config_from_src(wavlm_src: str, model_dir: Path, source):
    """``wavlm_src`` as DiariZen reads it: a WavLM checkpoint file with its ``config`` (looked
    up next to config.toml, then as given), else a named structure."""
    from espnet_prune.utils.checkpoint import read_checkpoint
    from espnet_prune.wavlm.convert import config_from_torchaudio

    for candidate in (model_dir / str(wavlm_src), Path(str(wavlm_src))):
        if candidate.is_file():
            data = read_checkpoint(candidate, "DiariZen WavLM checkpoint")
            if not isinstance(data, dict) or not isinstance(data.get("config"), dict):
                raise CheckpointError(f"{candidate}: expected a dict with a 'config' dict "
                                      "(DiariZen's WavLM checkpoint)")
            return config_from_torchaudio(data["config"], candidate)
    return named_wavlm_config(wavlm_src)


# ------------------------------------------------------------------ reading the directory
def read_model_dir(model_dir) -> tuple[dict, dict, Path]:
    """``(config.toml as a mapping, state dict, weights path)`` of a DiariZen model directory."""
    import torch

    from espnet_prune.utils.checkpoint import read_checkpoint

    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ConfigError(f"{model_dir}: --model_dir is not a directory")
    config_path = model_dir / CONFIG_FILE
    if not config_path.is_file():
        raise ConfigError(f"{config_path}: no such file (not a DiariZen model directory)")
    try:
        config = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config_path}: not valid TOML ({exc})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{config_path}: cannot read ({exc})") from None
    weights_path = model_dir / WEIGHTS_FILE
    state = read_checkpoint(weights_path, "DiariZen weights file")
    if not isinstance(state, dict):
        raise CheckpointError(f"{weights_path}: expected a state dict, got "
                              f"{type(state).__name__}")
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{weights_path}: not a state dict (key {key!r} holds a "
                                  f"{type(value).__name__})")
    return config, state, weights_path


def model_args(config: dict, source) -> dict:
    """``[model.args]`` with DiariZen's defaults, checked against what ours can express."""
    model = config.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("args", {}), dict):
        raise ConfigError(f"{source}: no [model] table with [model.args]")
    path = model.get("path", MODEL_CLASS)
    if path != MODEL_CLASS:
        raise ConfigError(f"{source}: [model] path = {path!r}; only {MODEL_CLASS!r} (WavLM + "
                          "Conformer) can be imported")
    args = dict(MODEL_DEFAULTS)
    unknown = sorted(set(model.get("args", {})) - set(MODEL_DEFAULTS))
    if unknown:
        raise ConfigError(f"{source}: unknown [model.args] {unknown}")
    args.update(model.get("args", {}))
    if args["use_posi"]:
        raise ConfigError(f"{source}: [model.args] use_posi = true (relative positional "
                          "encoding in the Conformer) cannot be expressed by our Conformer, "
                          "which has no positional encoding")
    if args["output_activate_function"]:
        raise ConfigError(f"{source}: [model.args] output_activate_function = "
                          f"{args['output_activate_function']!r} cannot be expressed: our "
                          "classifier reads the last Conformer block's output directly")
    if args["kernel_size"] % 2 == 0:
        raise ConfigError(f"{source}: [model.args] kernel_size must be odd")
    if args["sample_rate"] != 16000:
        raise ConfigError(f"{source}: [model.args] sample_rate = {args['sample_rate']}; "
                          "only 16000 is supported")
    return args


def wavlm_config_for(args: dict, model_dir: Path, source):
    config = wavlm_config_from_src(args["wavlm_src"], model_dir, source)
    if not config.use_attention[0] or not config.kept_heads[0]:
        raise ConfigError(f"{source}: the WavLM's first layer has no attention, so DiariZen "
                          "applies no relative position bias at all; ours cannot express that")
    if args["wavlm_feat_dim"] != config.embed_dim:
        raise ConfigError(f"{source}: [model.args] wavlm_feat_dim = {args['wavlm_feat_dim']} "
                          f"but {args['wavlm_src']} has embed_dim {config.embed_dim}")
    if args["wavlm_layer_num"] != config.num_layers + 1:
        raise ConfigError(f"{source}: [model.args] wavlm_layer_num = {args['wavlm_layer_num']}"
                          f", but our frontend sums all {config.num_layers + 1} hidden states "
                          f"of {args['wavlm_src']}")
    return config


# ------------------------------------------------------------------ key mapping
_CONFORMER_RULES = [
    (r"^ffn1\.ln_norm\.", "norm_ff_macaron."),
    (r"^ffn1\.(w_1|w_2)\.", r"feed_forward_macaron.\1."),
    (r"^mha\.ln_norm\.", "norm_mha."),
    (r"^mha\.mha\.linearQ\.", "self_attn.linear_q."),
    (r"^mha\.mha\.linearK\.", "self_attn.linear_k."),
    (r"^mha\.mha\.linearV\.", "self_attn.linear_v."),
    (r"^mha\.mha\.linearO\.", "self_attn.linear_out."),
    (r"^conv\.ln_norm\.", "norm_conv."),
    (r"^conv\.(pointwise_conv1|depthwise_conv|pointwise_conv2)\.", r"conv_module.\1."),
    (r"^conv\.bn_norm\.", "conv_module.norm."),
    (r"^ffn2\.ln_norm\.", "norm_ff."),
    (r"^ffn2\.(w_1|w_2)\.", r"feed_forward.\1."),
    (r"^ln_norm\.", "norm_final."),
]

_TOP_RULES = [
    (r"^weight_sum\.weight$", "frontend.layer_sum.weights.weight"),
    (r"^proj\.", "projection."),
    (r"^lnorm\.", "projection_norm."),
    (r"^classifier\.", "classifier."),
]


def our_key(key: str) -> str | None:
    """DiariZen state-dict key → our ``PowersetDiarizationModel`` key (None: no rule)."""
    from espnet_prune.wavlm.convert import first_rule, torchaudio_key

    if key.startswith("wavlm_model."):
        new = torchaudio_key(key[len("wavlm_model."):])
        return None if new is None else "frontend.wavlm." + new
    match = re.match(r"^conformer\.conformer_layer\.(\d+)\.(.*)$", key)
    if match:
        new = first_rule(_CONFORMER_RULES, match.group(2))
        return None if new is None else f"encoder.encoders.{match.group(1)}.{new}"
    return first_rule(_TOP_RULES, key)


def convert_state(source_state: dict, wavlm_config, source) -> dict:
    """Our state dict from DiariZen's; unknown source keys are an error naming the key."""
    import torch

    state = {}
    for key, value in source_state.items():
        new = our_key(key)
        if new is None:
            raise CheckpointError(f"{source}: key {key!r} has no counterpart in our model")
        match = re.match(r"^frontend\.wavlm\.encoder\.layers\.(\d+)\.attention\."
                         r"gru_rel_pos_const$", new)
        if match:
            layer = int(match.group(1))
            if value.dim() != 4 or value.shape[1] != wavlm_config.num_heads:
                raise CheckpointError(
                    f"{source}: key {key!r} has shape {tuple(value.shape)}, expected "
                    f"(1, {wavlm_config.num_heads}, 1, 1) (one gate constant per original head)")
            kept = torch.tensor(wavlm_config.kept_heads[layer], dtype=torch.long)
            value = value.index_select(1, kept)
        if new in state:
            raise CheckpointError(f"{source}: key {key!r} maps onto {new!r} twice")
        state[new] = (key, value)
    return state


def load_converted(model, converted: dict, source) -> None:
    """Strict load: every model tensor filled, shapes equal; errors name DiariZen's key."""
    expected = model.state_dict()
    for new, (key, value) in converted.items():
        if new not in expected:
            raise CheckpointError(f"{source}: key {key!r} (→ {new!r}) is not in the model "
                                  "built from its config.toml")
        if tuple(value.shape) != tuple(expected[new].shape):
            raise CheckpointError(
                f"{source}: key {key!r} has shape {tuple(value.shape)}, the model built from "
                f"config.toml expects {tuple(expected[new].shape)} (as {new!r})")
    missing = [k for k in expected if k not in converted]
    if missing:
        raise CheckpointError(f"{source}: no tensor for our {missing[0]!r}"
                              + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    model.load_state_dict({new: value for new, (_, value) in converted.items()}, strict=True)


# ------------------------------------------------------------------ configs we write
def train_config(args: dict, wavlm_config) -> dict:
    """The ``config.yaml`` content that rebuilds the imported model (``build_model``)."""
    return {
        "frontend": "wavlm_prunable",
        "frontend_conf": {"config": wavlm_config.to_dict(), "cnn_grad_scale": 0.1},
        "encoder": "conformer",
        "encoder_conf": {
            "output_size": int(args["attention_in"]),
            "attention_heads": int(args["num_head"]),
            "linear_units": int(args["ffn_hidden"]),
            "num_blocks": int(args["num_layer"]),
            "cnn_module_kernel": int(args["kernel_size"]),
            "dropout_rate": float(args["dropout"]),
            "attention_dropout_rate": float(args["dropout"]),
            "final_norm": False,
            "layer_norm_eps": 1e-5,
        },
        "model_conf": {
            "max_speakers_per_chunk": int(args["max_speakers_per_chunk"]),
            "max_speakers_per_frame": int(args["max_speakers_per_frame"]),
        },
    }


def finetune_config(args: dict, model_conf: dict) -> dict:
    """A ``diar_train --config`` for fine-tuning the import (``--init_param EXP/model.pth``):
    the same network, DiariZen's chunking and learning rates (AdamW, 1e-3 for the back-end,
    2e-5 for WavLM)."""
    chunk = float(args["chunk_size"])
    return {**copy.deepcopy(model_conf), "optim": "adamw", "optim_conf": {"lr": 1e-3},
            "upstream_lr": 2e-5, "chunk_size": chunk, "chunk_shift": chunk * 0.75,
            "batch_size": 16, "max_epoch": 10, "grad_clip": 5.0}


def inference_config(config: dict, embedding_model, source,
                     plda_file=None) -> tuple[dict, list[str]]:
    """Our ``diar_inference --config`` from ``[inference.args]`` and ``[clustering.args]``,
    and the notes on what could not be carried over."""
    from espnet_prune.infer.pipeline import InferenceConfig  # the paper's median filter size

    inference = (config.get("inference") or {}).get("args") or {}
    clustering = (config.get("clustering") or {}).get("args") or {}
    notes = []
    conf = {}
    if "seg_duration" in inference:
        conf["window"] = float(inference["seg_duration"])
        if "segmentation_step" in inference:
            conf["step"] = round(float(inference["segmentation_step"])
                                 * float(inference["seg_duration"]), 6)
    if "batch_size" in inference:
        conf["batch_size"] = int(inference["batch_size"])
    # DiariZen runs its batch of windows through the WavLM and the ResNet34 at once; the
    # released 32 windows of 8 s take a 60 s recording to 2.9 GB peak RSS on CPU. The batch
    # goes through both in slices of this many windows instead (results do not depend on it;
    # measured for 2 h: espnet_prune/measure/BENCHMARKS.md, DiariZen import).
    conf["forward_batch_size"] = IMPORT_FORWARD_BATCH_SIZE
    # DiariZen clusters every embedding; a 2-hour recording then peaks at ~3 GB in AHC's
    # distance matrix, so the import caps the clustering at an even subsample (the DER and
    # memory effect of the cap are measured in espnet_prune/measure/BENCHMARKS.md, "Clustering
    # subsample and frame times"; set it to 0 for the reference's behaviour)
    conf["max_cluster_embeddings"] = IMPORT_MAX_CLUSTER_EMBEDDINGS
    if "apply_median_filtering" in inference:
        conf["median_filter"] = (InferenceConfig.median_filter
                                 if inference["apply_median_filtering"] else 0)
    for key in ("min_speakers", "max_speakers"):
        if key in clustering:
            conf[key] = int(clustering[key])
    conf["embedding"] = {"name": "wespeaker_resnet34",
                         "conf": {"checkpoint": str(embedding_model) if embedding_model
                                  else "SET_ME/wespeaker-voxceleb-resnet34-LM"}}
    if not embedding_model:
        notes.append("embedding.conf.checkpoint is a placeholder: give a local copy of "
                     "pyannote/wespeaker-voxceleb-resnet34-LM (--embedding_model)")
    method = clustering.get("method", "VBxClustering")
    if method == "AgglomerativeClustering":
        conf["clustering"] = {"name": "ahc"}
        if "ahc_threshold" in clustering:
            conf["clustering"]["threshold"] = float(clustering["ahc_threshold"])
        if "min_cluster_size" in clustering:
            conf["clustering"]["min_cluster_size"] = int(clustering["min_cluster_size"])
    elif method == "VBxClustering" and plda_file is not None:
        if clustering.get("ahc_criterion", "distance") != "distance":
            raise ConfigError(f"{source}: [clustering.args] ahc_criterion = "
                              f"{clustering['ahc_criterion']!r}; our VBx starts from AHC with "
                              "a distance threshold only")
        conf["clustering"] = {"name": "vbx", "plda": str(plda_file)}
        for theirs, ours in (("ahc_threshold", "threshold"), ("Fa", "fa"), ("Fb", "fb"),
                             ("max_iters", "max_iters")):
            if theirs in clustering:
                conf["clustering"][ours] = clustering[theirs]
    elif method == "VBxClustering":
        conf["clustering"] = {"name": "ahc", "threshold": 0.7, "min_cluster_size": 30}
        notes.append(f"{source} asks for VBx clustering, but the model directory has no "
                     f"{PLDA_DIR}/ with xvec_transform.npz and plda.npz, so the config uses AHC "
                     "(threshold 0.7, the recipe's WeSpeaker ResNet34 value) instead")
    else:
        raise ConfigError(f"{source}: [clustering.args] method = {method!r} (expected "
                          "VBxClustering or AgglomerativeClustering)")
    from espnet_prune.infer.config_schema import check_inference_config

    check_inference_config(conf, source)  # a value diar_inference would refuse: refused now
    return conf, notes


PLDA_DIR = "plda"
PLDA_FILE = "plda.npz"
# windows per forward in the imported inference config (WavLM ≈ 49 MB and ResNet34 ≈ 80 MB of
# activations per 8 s window on CPU): 4 keeps a 2-hour recording under 2 GB peak RSS
IMPORT_FORWARD_BATCH_SIZE = 4
# embeddings clustered at most in the imported inference config (the rest are assigned)
IMPORT_MAX_CLUSTER_EMBEDDINGS = 6000


def _read_npz(path: Path, keys: tuple[str, ...]) -> dict:
    import numpy as np

    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in keys if k not in data.files]
            if missing:
                raise CheckpointError(f"{path}: lacks array(s) {', '.join(missing)}")
            return {k: np.asarray(data[k], dtype=np.float64) for k in keys}
    except CheckpointError:
        raise
    except Exception as exc:  # OSError, ValueError (pickled data), BadZipFile
        message = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(f"{path}: cannot read ({message})") from None


def convert_plda(plda_dir, lda_dim: int = 128):
    """DiariZen's VBx files (``xvec_transform.npz``: mean1, mean2, lda; ``plda.npz``: mu, tr,
    psi) as our :class:`~espnet_prune.infer.plda.Plda`, computing the same PLDA features.

    DiariZen scales the centred, length-normalised embedding by sqrt(D) before the LDA (folded
    here into ``lda``), re-diagonalises the PLDA (between- against within-speaker covariance,
    largest first) and keeps the first ``lda_dim`` dimensions."""
    import numpy as np
    from scipy.linalg import eigh

    from espnet_prune.infer.plda import Plda

    plda_dir = Path(plda_dir)
    xvec = _read_npz(plda_dir / "xvec_transform.npz", ("mean1", "mean2", "lda"))
    plda = _read_npz(plda_dir / "plda.npz", ("mu", "tr", "psi"))
    lda = xvec["lda"]
    if lda.ndim != 2 or xvec["mean1"].shape != (lda.shape[0],) or \
            xvec["mean2"].shape != (lda.shape[1],):
        raise CheckpointError(f"{plda_dir}/xvec_transform.npz: shapes of mean1 "
                              f"{xvec['mean1'].shape}, lda {lda.shape}, mean2 "
                              f"{xvec['mean2'].shape} do not fit together")
    dim = lda.shape[1]
    if plda["tr"].shape != (dim, dim) or plda["mu"].shape != (dim,) or \
            plda["psi"].shape != (dim,):
        raise CheckpointError(f"{plda_dir}/plda.npz: expected mu, psi of ({dim},) and tr of "
                              f"({dim}, {dim}) after an LDA to {dim}")
    tr, psi = plda["tr"], plda["psi"]
    within = np.linalg.inv(tr.T @ tr)
    between = np.linalg.inv((tr.T / psi) @ tr)
    values, vectors = eigh(between, within)
    keep = min(int(lda_dim), dim)
    return Plda(mean1=xvec["mean1"], lda=np.sqrt(lda.shape[0]) * lda, mean2=xvec["mean2"],
                plda_mu=plda["mu"], plda_tr=vectors.T[::-1][:keep].copy(),
                phi=values[::-1][:keep].copy())


# ------------------------------------------------------------------ the import
def import_diarizen(model_dir, output_dir, embedding_model=None) -> dict:
    """Write ``OUTPUT/{config.yaml, model.pth, wavlm.pt, inference.yaml, finetune.yaml[,
    plda.npz]}`` from a DiariZen model directory; the model is rebuilt from the written
    config.yaml and loaded strictly before config.yaml and model.pth are written.
    finetune.yaml is written last, so it marks a finished import.  Returns a summary."""
    import numpy as np
    import yaml

    from espnet_prune.diar.model_file import build_model
    from espnet_prune.infer.plda import KEYS as PLDA_KEYS
    from espnet_prune.tasks.diar import PowersetDiarizationTask
    from espnet_prune.utils.io import atomic_path, atomic_torch_save, check_output_dir
    from espnet_prune.wavlm.checkpoint import save_wavlm

    model_dir = Path(model_dir)
    output_dir = check_output_dir(output_dir)
    config, source_state, weights_path = read_model_dir(model_dir)
    config_path = model_dir / CONFIG_FILE
    args = model_args(config, config_path)
    wavlm_config = wavlm_config_for(args, model_dir, config_path)
    model_conf = train_config(args, wavlm_config)
    converted = convert_state(source_state, wavlm_config, weights_path)
    plda = None
    clustering = (config.get("clustering") or {}).get("args") or {}
    if clustering.get("method", "VBxClustering") == "VBxClustering" and \
            (model_dir / PLDA_DIR).is_dir():
        plda = convert_plda(model_dir / PLDA_DIR, clustering.get("lda_dim", 128))
    plda_file = None if plda is None else (output_dir / PLDA_FILE).resolve()
    inference, notes = inference_config(config, embedding_model, config_path, plda_file)

    train_config_path = output_dir / TRAIN_CONFIG_FILE
    with atomic_path(train_config_path) as tmp:  # config.yaml only once the model loaded
        tmp.write_text(yaml.safe_dump(model_conf, sort_keys=False), encoding="utf-8")
        model = build_model(PowersetDiarizationTask, tmp)
        load_converted(model, converted, weights_path)
        state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
        atomic_torch_save(state, output_dir / MODEL_FILE)
    save_wavlm(model.frontend.wavlm, output_dir / WAVLM_FILE)
    if plda is not None:
        with atomic_path(output_dir / PLDA_FILE) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **{key: getattr(plda, key) for key in PLDA_KEYS})
    header = "".join(f"# NOTE: {note}\n" for note in notes)
    header = f"# imported from {model_dir} by the diarizen_import command\n" + header
    for name, content in ((INFERENCE_CONFIG_FILE, inference),
                          (FINETUNE_CONFIG_FILE, finetune_config(args, model_conf))):
        with atomic_path(output_dir / name) as tmp:
            tmp.write_text(header + yaml.safe_dump(content, sort_keys=False), encoding="utf-8")
    for note in notes:
        logger.warning("%s", note)
    num_params = sum(int(v.numel()) for v in model.parameters())
    return {"output_dir": str(output_dir), "model_file": str(output_dir / MODEL_FILE),
            "train_config": str(train_config_path), "wavlm": str(output_dir / WAVLM_FILE),
            "inference_config": str(output_dir / INFERENCE_CONFIG_FILE),
            "finetune_config": str(output_dir / FINETUNE_CONFIG_FILE),
            "plda": None if plda_file is None else str(plda_file),
            "tensors": len(converted), "params": num_params, "notes": notes}
