"""Import of DiariZen model directories (espnet_prune.zoo.diarizen): every tensor lands
where it should, the imported model computes DiariZen's function (checked against DiariZen's own
model code where its source is at hand), it diarizes with diar_inference and fine-tunes with
diar_train --init_param."""

from __future__ import annotations

import math
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from diar_fixtures import run_module
from diarizen_fixtures import (
    TINY_MODEL_ARGS,
    TINY_WAVLM,
    TINY_WAVLM_LARGE,
    diarizen_shapes,
    distinct_state,
    make_diarizen_dir,
    released_base_s80,
    wespeaker_checkpoint,
    write_config_toml,
    write_vbx_files,
)
from diarizen_reference import diarizen_file, diarizen_repo

from espnet_prune.errors import CheckpointError, ConfigError
from espnet_prune.zoo.diarizen import import_diarizen

DIARIZEN_FILES = [
    "diarizen/__init__.py", "diarizen/models/__init__.py",
    "diarizen/models/eend/model_wavlm_conformer.py", "diarizen/models/module/conformer.py",
    "diarizen/models/module/wavlm_config.py", "diarizen/models/module/wav2vec2/__init__.py",
    "diarizen/models/module/wav2vec2/components.py",
    "diarizen/models/module/wav2vec2/hardconcrete.py",
    "diarizen/models/module/wav2vec2/model.py",
    "diarizen/models/module/wav2vec2/pruning_utils.py", "diarizen/clustering/VBx.py",
]


def load_model(exp: Path):
    from espnet_prune.infer.run import load_model as load

    return load(str(exp / "config.yaml"), str(exp / "model.pth"), "cpu")


# ------------------------------------------------------------------ mapping
def test_every_source_tensor_lands_in_exactly_one_place(tmp_path):
    source = make_diarizen_dir(tmp_path / "dz")
    src = torch.load(source / "pytorch_model.bin", weights_only=True)
    import_diarizen(source, tmp_path / "exp")
    ours = torch.load(tmp_path / "exp" / "model.pth", weights_only=True)
    kept = TINY_WAVLM["encoder_remaining_heads"]
    found = {}
    for key, value in src.items():
        match = None
        if key.endswith("gru_rel_pos_const"):  # only the kept heads' constants are used
            layer = int(key.split(".layers.")[1].split(".")[0])
            value = value[:, kept[layer]]
        for our_key, our_value in ours.items():
            if our_value.shape == value.shape and torch.equal(our_value, value):
                assert match is None, f"{key} found twice ({match}, {our_key})"
                match = our_key
        assert match is not None, f"{key} is nowhere in the imported state dict"
        found[match] = key
    assert sorted(found) == sorted(ours), "imported tensors that come from no source tensor"


def test_mapping_is_the_expected_one_for_a_few_keys(tmp_path):
    source = make_diarizen_dir(tmp_path / "dz")
    src = torch.load(source / "pytorch_model.bin", weights_only=True)
    import_diarizen(source, tmp_path / "exp")
    ours = torch.load(tmp_path / "exp" / "model.pth", weights_only=True)
    pairs = {
        "weight_sum.weight": "frontend.layer_sum.weights.weight",
        "lnorm.bias": "projection_norm.bias",
        "conformer.conformer_layer.1.ffn1.ln_norm.weight":
            "encoder.encoders.1.norm_ff_macaron.weight",
        "conformer.conformer_layer.0.ffn2.w_1.weight": "encoder.encoders.0.feed_forward.w_1.weight",
        "conformer.conformer_layer.0.ln_norm.bias": "encoder.encoders.0.norm_final.bias",
        "conformer.conformer_layer.0.conv.bn_norm.running_var":
            "encoder.encoders.0.conv_module.norm.running_var",
        "wavlm_model.feature_extractor.dummy_weight":
            "frontend.wavlm.feature_extractor.output_scale",
        "wavlm_model.encoder.transformer.layers.0.attention.rel_attn_embed.weight":
            "frontend.wavlm.encoder.rel_attn_embed.weight",
        "wavlm_model.encoder.transformer.pos_conv_embed.conv.parametrizations.weight.original0":
            "frontend.wavlm.encoder.pos_conv.weight_g",
    }
    for theirs, mine in pairs.items():
        assert torch.equal(src[theirs], ours[mine]), (theirs, mine)
    assert not any(k.startswith("encoder.after_norm") for k in ours)


def test_wavlm_file_is_the_imported_wavlm(tmp_path):
    """wavlm.pt (what stage 8's wavlm_stats and wavlm_bench read) is model.pth's WavLM."""
    from espnet_prune.wavlm.checkpoint import load_wavlm

    summary = import_diarizen(make_diarizen_dir(tmp_path / "dz"), tmp_path / "exp")
    assert summary["wavlm"] == str(tmp_path / "exp" / "wavlm.pt")
    wavlm = load_wavlm(tmp_path / "exp" / "wavlm.pt")
    ours = torch.load(tmp_path / "exp" / "model.pth", weights_only=True)
    prefix = "frontend.wavlm."
    assert sorted(wavlm.state_dict()) == sorted(k[len(prefix):] for k in ours
                                                if k.startswith(prefix))
    for key, value in wavlm.state_dict().items():
        assert torch.equal(value, ours[prefix + key]), key
    assert wavlm.config.kept_heads == [[0, 2, 3], [], [1, 3]]


def test_unknown_key_and_wrong_shape_are_one_error_naming_the_key(tmp_path):
    shapes = diarizen_shapes(TINY_WAVLM, TINY_MODEL_ARGS)
    extra = distinct_state(shapes)
    extra["conformer.pos_emb.pe_k.weight"] = torch.zeros(3, 3)
    with pytest.raises(CheckpointError, match=r"'conformer\.pos_emb\.pe_k\.weight'"):
        import_diarizen(make_diarizen_dir(tmp_path / "a", state=extra), tmp_path / "ea")
    wrong = distinct_state(shapes)
    key = "wavlm_model.encoder.transformer.layers.2.feed_forward.intermediate_dense.weight"
    wrong[key] = torch.zeros(8, 32)
    with pytest.raises(CheckpointError, match=r"intermediate_dense\.weight' has shape \(8, 32\)"):
        import_diarizen(make_diarizen_dir(tmp_path / "b", state=wrong), tmp_path / "eb")
    missing = distinct_state(shapes)
    del missing["classifier.bias"]
    with pytest.raises(CheckpointError, match=r"classifier\.bias"):
        import_diarizen(make_diarizen_dir(tmp_path / "c", state=missing), tmp_path / "ec")
    assert not (tmp_path / "ec" / "config.yaml").exists()  # nothing half-written
    posi = make_diarizen_dir(tmp_path / "d", args={**TINY_MODEL_ARGS, "use_posi": True})
    with pytest.raises(ConfigError, match="use_posi"):
        import_diarizen(posi, tmp_path / "ed")


def test_released_base_s80_structure_maps_completely(tmp_path):
    """The named structure of diarizen-wavlm-base-s80-md: key names and shapes of the full
    model (the fixture generator fed with its per-layer sizes) import strictly."""
    wavlm, args = released_base_s80()
    source = make_diarizen_dir(tmp_path / "base_s80", wavlm=wavlm, args=args)
    summary = import_diarizen(source, tmp_path / "exp")
    assert summary["tensors"] == len(diarizen_shapes(wavlm, args))


# ------------------------------------------------------------------ DiariZen's own code
def diarizen_source(tmp_path: Path) -> Path:
    """DiariZen's model modules at the pinned commit, from the checkout ``DIARIZEN_REPO``
    names (read, not vendored; test/diarizen_reference.py)."""
    repo = diarizen_repo()
    root = tmp_path / "diarizen_src"
    for name in DIARIZEN_FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(diarizen_file(repo, name))
    return root


class _PyannoteModelStub(torch.nn.Module):
    """pyannote.audio's ``Model`` reduced to what DiariZen's ``Model.forward`` uses from it:
    the powerset specification (number of classes) and its default activation for powerset
    outputs, ``LogSoftmax(dim=-1)``.  (pyannote.audio itself needs lightning, which is not part
    of the environment.)"""

    def __init__(self, num_channels=1, duration=5, max_speakers_per_chunk=4,
                 max_speakers_per_frame=2):
        super().__init__()
        classes = sum(math.comb(max_speakers_per_chunk, i)
                      for i in range(max_speakers_per_frame + 1))
        self.specifications = types.SimpleNamespace(powerset=True,
                                                    num_powerset_classes=classes)

    def default_activation(self):
        return torch.nn.LogSoftmax(dim=-1)


@pytest.fixture
def diarizen_model_class(tmp_path, monkeypatch):
    root = diarizen_source(tmp_path)
    stubs = {name: types.ModuleType(name) for name in (
        "pyannote.audio", "pyannote.audio.core", "pyannote.audio.core.model",
        "pyannote.audio.utils", "pyannote.audio.utils.receptive_field")}
    stubs["pyannote.audio.core.model"].Model = _PyannoteModelStub
    for name in ("multi_conv_num_frames", "multi_conv_receptive_field_size",
                 "multi_conv_receptive_field_center"):
        setattr(stubs["pyannote.audio.utils.receptive_field"], name, None)
    for name, module in stubs.items():
        monkeypatch.setitem(sys.modules, name, module)
    for name in [m for m in sys.modules if m == "diarizen" or m.startswith("diarizen.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.syspath_prepend(str(root))
    import importlib

    module = importlib.import_module("diarizen.models.eend.model_wavlm_conformer")
    yield module.Model
    for name in [m for m in sys.modules if m == "diarizen" or m.startswith("diarizen.")]:
        sys.modules.pop(name, None)


def compare_with_diarizen(model_class, tmp_path, args: dict, wavlm: dict | None, seconds=2.0):
    folder = tmp_path / "dz"
    folder.mkdir()
    if wavlm is not None:
        torch.save({"config": wavlm, "state_dict": {}}, folder / args["wavlm_src"])
        args = dict(args)
    build_args = dict(args)
    if wavlm is not None:
        build_args["wavlm_src"] = str(folder / args["wavlm_src"])
    theirs = model_class(**build_args).eval()
    state = distinct_state({k: tuple(v.shape) for k, v in theirs.state_dict().items()})
    theirs.load_state_dict(state, strict=True)
    torch.save(state, folder / "pytorch_model.bin")
    write_config_toml(folder / "config.toml", args)
    import_diarizen(folder, tmp_path / "exp")
    ours = load_model(tmp_path / "exp")
    audio = 0.1 * torch.randn(2, int(seconds * 16000), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = theirs(audio[:, None, :])
        got = ours.predict(audio)
    assert got.shape == expected.shape
    diff = (got - expected).abs().max().item()
    assert diff < 1e-4, f"log-probabilities differ by {diff}"
    # the Conformer alone, on inputs of small variance, where LayerNorm's eps matters (ESPnet's
    # 1e-12 against PyTorch's 1e-5 changes the output by far more than 1e-4 here)
    x = 1e-3 * torch.randn(2, 50, args["attention_in"], generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = theirs.conformer(x)
        got = ours.encoder(x, torch.full((2,), 50))[0]
    diff = (got - expected).abs().max().item()
    assert diff < 1e-4, f"Conformer outputs differ by {diff}"
    return state


def test_tiny_import_computes_diarizen_function(diarizen_model_class, tmp_path):
    state = compare_with_diarizen(diarizen_model_class, tmp_path, TINY_MODEL_ARGS, TINY_WAVLM)
    # and the fixture generator writes exactly DiariZen's keys and shapes
    assert {k: tuple(v.shape) for k, v in state.items()} == \
        diarizen_shapes(TINY_WAVLM, TINY_MODEL_ARGS)


def test_tiny_large_layout_computes_diarizen_function(diarizen_model_class, tmp_path):
    compare_with_diarizen(diarizen_model_class, tmp_path, TINY_MODEL_ARGS, TINY_WAVLM_LARGE)


@pytest.mark.slow
@pytest.mark.parametrize("name,dim,layers", [("wavlm_base_s80_md", 768, 13),
                                             ("wavlm_large_s80_md", 1024, 25)])
def test_released_structures_compute_diarizen_function(diarizen_model_class, tmp_path, name,
                                                       dim, layers):
    args = {"wavlm_src": name, "wavlm_layer_num": layers, "wavlm_feat_dim": dim,
            "attention_in": 256, "ffn_hidden": 1024, "num_head": 4, "num_layer": 4,
            "dropout": 0.1, "chunk_size": 8, "use_posi": False,
            "output_activate_function": False, "selected_channel": 0,
            "max_speakers_per_chunk": 4}
    compare_with_diarizen(diarizen_model_class, tmp_path, args, None, seconds=1.0)


def test_vbx_files_give_diarizen_plda_features(tmp_path, diarizen_model_class):
    import importlib

    from espnet_prune.zoo.diarizen import convert_plda

    plda_dir = write_vbx_files(tmp_path / "dz", lda_dim=128)
    vbx = importlib.import_module("diarizen.clustering.VBx")
    x_tf, plda_tf, psi = vbx.vbx_setup(str(plda_dir))
    embeddings = np.random.default_rng(3).normal(size=(20, 256))
    for lda_dim in (128, 64):
        ours = convert_plda(plda_dir, lda_dim)
        np.testing.assert_allclose(ours.transform(embeddings),
                                   plda_tf(x_tf(embeddings), lda_dim=lda_dim), atol=1e-8)
        np.testing.assert_allclose(ours.phi, psi[:lda_dim], rtol=1e-10)


def test_no_vbx_files_fall_back_to_ahc_with_a_note(tmp_path):
    summary = import_diarizen(make_diarizen_dir(tmp_path / "dz"), tmp_path / "exp")
    text = (tmp_path / "exp" / "inference.yaml").read_text()
    assert summary["plda"] is None and "# NOTE:" in text and "VBx" in text
    assert yaml.safe_load(text)["clustering"]["name"] == "ahc"


# ------------------------------------------------------------------ inference and fine-tuning
def python(args, cwd, timeout=900):
    return run_module(args, cwd, timeout)


def test_cli_import_then_diarize_and_fine_tune(tmp_path, tiny_data_dir):
    source = make_diarizen_dir(tmp_path / "dz")
    write_vbx_files(source)
    embedding = wespeaker_checkpoint(tmp_path / "wespeaker")
    exp = tmp_path / "exp"
    python(["espnet_prune.bin.diarizen_import", "--model_dir", str(source), "--output_dir",
            str(exp), "--embedding_model", str(embedding)], cwd=tmp_path)
    inference = yaml.safe_load((exp / "inference.yaml").read_text())
    assert inference["window"] == 2.0 and inference["step"] == 1.0
    assert inference["max_speakers"] == 5 and inference["median_filter"] == 11
    assert inference["forward_batch_size"] == 4  # the 2-hour memory goal (BENCHMARKS.md)
    assert inference["max_cluster_embeddings"] == 6000  # AHC memory bounded on long audio
    assert inference["embedding"]["conf"]["checkpoint"] == str(embedding)
    assert inference["clustering"] == {"name": "vbx", "plda": str(exp / "plda.npz"),
                                       "threshold": 0.6, "fa": 0.07, "fb": 0.8, "max_iters": 20}

    audio = 0.1 * np.random.default_rng(0).normal(size=5 * 16000)
    sf.write(tmp_path / "rec.wav", audio.astype(np.float32), 16000)
    (tmp_path / "wav.scp").write_text(f"rec {tmp_path / 'rec.wav'}\n")
    python(["espnet_prune.bin.diar_inference", "--model_file", str(exp / "model.pth"),
            "--train_config", str(exp / "config.yaml"), "--wav_scp", str(tmp_path / "wav.scp"),
            "--output_dir", str(tmp_path / "out"), "--no_progress",
            "--config", str(exp / "inference.yaml")], cwd=tmp_path)
    assert (tmp_path / "out" / "rttm_per_recording" / "rec.rttm").is_file()

    finetune = yaml.safe_load((exp / "finetune.yaml").read_text())
    finetune.update({"batch_size": 4, "max_epoch": 1, "chunk_size": 2.0, "chunk_shift": 2.0,
                     "num_workers": 0, "keep_nbest_models": 1, "use_matplotlib": False,
                     "seed": 0, "progress_bar": False})
    (tmp_path / "finetune.yaml").write_text(yaml.safe_dump(finetune))
    python(["espnet_prune.bin.diar_train", "--config", str(tmp_path / "finetune.yaml"),
            "--init_param", str(exp / "model.pth"),
            "--train_data_path_and_name_and_type", f"{tiny_data_dir}/wav.scp,speech,sound",
            "--valid_data_path_and_name_and_type", f"{tiny_data_dir}/wav.scp,speech,sound",
            "--output_dir", str(tmp_path / "ft"), "--ngpu", "0"], cwd=tmp_path)
    imported = torch.load(exp / "model.pth", weights_only=True)
    tuned = torch.load(tmp_path / "ft" / "1epoch.pth", weights_only=True)
    assert sorted(tuned) == sorted(imported)
    # started from the import (an untouched buffer is identical), and training moved it
    key = "frontend.wavlm.feature_extractor.output_scale"
    assert torch.equal(tuned[key], imported[key])
    assert not torch.equal(tuned["classifier.weight"], imported["classifier.weight"])
    assert (tuned["classifier.weight"] - imported["classifier.weight"]).abs().max() < 0.1
