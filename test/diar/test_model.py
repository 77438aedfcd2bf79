"""Model, frontends, Conformer and task wiring (imports espnet2 once for the whole file)."""

import copy

import pytest
import torch
import yaml

from espnet_prune.diar.data import DiarizationChunkDataset

TINY_ENCODER = dict(
    output_size=32, attention_heads=2, linear_units=64, num_blocks=1, cnn_module_kernel=7
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def task():
    from espnet_prune.tasks.diar import PowersetDiarizationTask

    return PowersetDiarizationTask


def args_from_yaml(tmp_path, config: dict, *extra):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return task().get_parser().parse_args(["--config", str(path), *extra])


def batch_for(args, data_dir, count=4):
    from espnet2.train.collate_fn import CommonCollateFn

    shift, length = task().frame_geometry(args)
    dataset = DiarizationChunkDataset(
        data_dir, chunk_size=2.0, chunk_shift=1.0, frame_shift=shift, frame_length=length
    )
    _, batch = CommonCollateFn(0.0, -1)([dataset[k] for k in dataset.keys[:count]])
    return batch


def tiny_wavlm_checkpoint(path):
    from espnet_prune.wavlm import WavLM, save_wavlm, wavlm_config

    torch.manual_seed(0)
    save_wavlm(WavLM(wavlm_config("tiny")), path)
    return path


def tiny_s3prl_wavlm_checkpoint(path):
    """A tiny WavLM in s3prl's own ``{"cfg", "model"}`` format (for ``wavlm_local``)."""
    from s3prl.upstream.wavlm.WavLM import WavLM, WavLMConfig

    cfg = dict(
        encoder_layers=2,
        encoder_embed_dim=32,
        encoder_ffn_embed_dim=64,
        encoder_attention_heads=2,
        conv_feature_layers="[(16,10,5)] + [(16,3,2)] * 4 + [(16,2,2)] * 2",
        conv_pos=16,
        conv_pos_groups=4,
        relative_position_embedding=True,
        num_buckets=32,
        max_distance=64,
        gru_rel_pos=True,
    )
    torch.save({"cfg": cfg, "model": WavLM(WavLMConfig(cfg)).state_dict()}, path)
    return path


def frontend_config(name, tmp_path):
    if name == "fbank":
        return {"frontend": "fbank", "frontend_conf": {"n_mels": 40}}
    if name == "s3prl":
        ckpt = tiny_s3prl_wavlm_checkpoint(tmp_path / "s3prl_tiny.pt")
        return {
            "frontend": "s3prl",
            "frontend_conf": {"upstream": "wavlm_local", "path_or_url": str(ckpt)},
        }
    ckpt = tiny_wavlm_checkpoint(tmp_path / "wavlm_tiny.pt")
    return {"frontend": "wavlm_prunable", "frontend_conf": {"path": str(ckpt)}}


@pytest.mark.parametrize("frontend", ["fbank", "s3prl", "wavlm_prunable"])
def test_each_frontend_builds_from_yaml_and_trains_one_step(frontend, tmp_path, tiny_data_dir):
    config = {
        **frontend_config(frontend, tmp_path),
        "encoder": "conformer",
        "encoder_conf": TINY_ENCODER,
        "optim": "adamw",
        "optim_conf": {"lr": 1e-3},
        "upstream_lr": 2e-5,
    }
    args = args_from_yaml(tmp_path, config)
    model = task().build_model(args)
    (optimizer,) = task().build_optimizers(args, model)
    lrs = sorted(group["lr"] for group in optimizer.param_groups)
    assert lrs == ([1e-3] if frontend == "fbank" else [2e-5, 1e-3])
    if frontend != "fbank":
        upstream = {id(p) for p in model.frontend.upstream_parameters()}
        small = [g for g in optimizer.param_groups if g["lr"] == 2e-5][0]["params"]
        assert {id(p) for p in small} == upstream
        assert id(model.frontend.layer_sum.weights.weight) not in upstream
    batch = batch_for(args, tiny_data_dir)
    before = copy.deepcopy(model.state_dict())
    model.train()
    loss, stats, weight = model(**batch)
    assert torch.isfinite(loss) and set(stats) == {"loss", "der", "acc"} and int(weight) == 4
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    after = model.state_dict()
    assert not torch.equal(before["classifier.weight"], after["classifier.weight"])
    if frontend != "fbank":
        changed = [k for k in after if "upstream" in k or "wavlm" in k]
        assert any(not torch.equal(before[k], after[k]) for k in changed)
    log_probs = model.predict(batch["speech"][:2])
    assert log_probs.shape[0] == 2 and log_probs.shape[-1] == 11
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(log_probs.shape[:2]), atol=1e-5)
    if frontend == "wavlm_prunable":
        assert model.frame_shift == 320 and model.frame_length == 400
        assert model.frontend.wavlm is not None


def test_cnn_gradient_is_scaled(tmp_path):
    from espnet_prune.diar.frontends import WavLMPrunableFrontend

    ckpt = tiny_wavlm_checkpoint(tmp_path / "w.pt")
    speech, lengths = torch.randn(2, 16000), torch.tensor([16000, 12000])
    grads = {}
    for scale in (1.0, 0.1):
        torch.manual_seed(0)  # the same (random, as the reference's) layer-sum init
        frontend = WavLMPrunableFrontend(str(ckpt), cnn_grad_scale=scale)
        feats, _ = frontend(speech, lengths)
        feats.pow(2).sum().backward()
        grads[scale] = (
            frontend.wavlm.feature_extractor.conv_layers[0].conv.weight.grad,
            frontend.wavlm.feature_projection.projection.weight.grad,
        )
    def relative_error(a, b):
        return float((a - b).abs().max() / b.abs().max())

    # the CNN gets a tenth of the gradient, the layers after it the full gradient
    assert relative_error(grads[0.1][0], 0.1 * grads[1.0][0]) < 1e-4
    assert relative_error(grads[0.1][1], grads[1.0][1]) < 1e-5
    assert relative_error(grads[0.1][0], grads[1.0][0]) > 0.5


def test_conformer_has_no_positional_encoding():
    from espnet2.asr.encoder.conformer_encoder import ConformerEncoder

    from espnet_prune.diar.encoder import PowersetConformerEncoder

    torch.manual_seed(0)
    x = torch.randn(1, 20, 32)
    lengths = torch.tensor([20])
    perm = torch.randperm(20)
    # without the convolution module a position-free encoder is permutation-equivariant
    ours = PowersetConformerEncoder(**{**TINY_ENCODER, "use_cnn_module": False}).eval()
    assert isinstance(ours.embed, torch.nn.Identity)
    out, _, _ = ours(x, lengths)
    out_perm, _, _ = ours(x[:, perm], lengths)
    assert torch.allclose(out[:, perm], out_perm, atol=1e-5)
    # ESPnet's closest option (absolute encoding) is not: the check above can fail
    espnet = ConformerEncoder(
        32, 32, 2, 64, 1, input_layer=None, pos_enc_layer_type="abs_pos",
        selfattention_layer_type="selfattn", rel_pos_type="latest", use_cnn_module=False,
        macaron_style=True, use_flash_attn=False,
    ).eval()
    ref, _, _ = espnet(x, lengths)
    ref_perm, _, _ = espnet(x[:, perm], lengths)
    assert not torch.allclose(ref[:, perm], ref_perm, atol=1e-3)
    # paper sizes: 4 macaron blocks with a kernel-31 depthwise convolution
    full = PowersetConformerEncoder()
    assert len(full.encoders) == 4 and full.output_size() == 256
    block = full.encoders[0]
    assert block.feed_forward_macaron is not None and block.conv_module is not None
    assert block.conv_module.depthwise_conv.kernel_size == (31,)
    assert block.self_attn.h == 4 and block.feed_forward.w_1.out_features == 1024


def test_tiny_model_overfits_a_batch(tmp_path, tiny_data_dir):
    torch.manual_seed(0)
    encoder = {**TINY_ENCODER, "num_blocks": 2, "dropout_rate": 0.0}
    encoder["attention_dropout_rate"] = 0.0
    args = args_from_yaml(
        tmp_path,
        {"frontend": "fbank", "frontend_conf": {"n_mels": 40}, "encoder_conf": encoder,
         "optim": "adamw", "optim_conf": {"lr": 3e-3}},
    )
    model = task().build_model(args)
    (optimizer,) = task().build_optimizers(args, model)
    batch = batch_for(args, tiny_data_dir, count=4)
    # features are fixed: cache them so the loop only trains the Conformer head
    with torch.no_grad():
        feats, feats_lengths = model.frontend(batch["speech"], batch["speech_lengths"])
    model.train()
    losses, accs = [], []
    for _ in range(40):
        log_probs, lengths = model.log_probs_from_features(feats, feats_lengths)
        loss, stats = model.diarization_loss(
            log_probs, lengths, batch["spk_labels"], batch["spk_labels_lengths"]
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        accs.append(float(stats["acc"]))
    model.eval()
    with torch.no_grad():
        _, stats, _ = model(**batch)
    assert losses[0] / float(stats["loss"]) >= 5.0, (losses[0], float(stats["loss"]))
    assert float(stats["acc"]) >= 0.95
    assert float(stats["der"]) <= 0.1


def test_frontends_are_registered_into_espnet_diar_task():
    import espnet2.tasks.diar as espnet_diar

    from espnet_prune.diar.frontends import FbankFrontend, WavLMPrunableFrontend

    classes = espnet_diar.frontend_choices.classes
    assert classes["wavlm_prunable"] is WavLMPrunableFrontend
    assert classes["fbank"] is FbankFrontend
    args = espnet_diar.DiarizationTask.get_parser().parse_args(
        ["--frontend", "fbank", "--frontend_conf", "n_mels=40"]
    )
    frontend = espnet_diar.frontend_choices.get_class(args.frontend)(**args.frontend_conf)
    feats, lengths = frontend(torch.randn(1, 16000), torch.tensor([16000]))
    assert feats.shape == (1, 98, 40) and lengths.tolist() == [98]


@pytest.mark.parametrize(
    "name",
    [
        "train_teacher_wavlm_base_plus.yaml",
        "train_teacher_wavlm_large.yaml",
        "train_pruned_wavlm_base_plus.yaml",
        "train_pruned_wavlm_large.yaml",
        "train_fbank.yaml",
    ],
)
def test_example_configs_have_the_paper_settings(name, tmp_path):
    from pathlib import Path

    conf = Path(__file__).resolve().parents[2] / "egs2/TEMPLATE/diar1/conf" / name
    extra = ["--config", str(conf)]
    if "wavlm" in name:  # the recipe passes the WavLM checkpoint on the command line
        extra += ["--frontend_conf", f"path={tiny_wavlm_checkpoint(tmp_path / 'w.pt')}"]
    args = task().get_parser().parse_args(extra)
    assert (args.chunk_size, args.chunk_shift, args.valid_chunk_shift) == (8.0, 6.0, 8.0)
    # ESPnet's patience = the reference's max_patience - 1 (teacher/fbank 10, final fine-tune 5)
    assert args.patience == (4 if "pruned" in name else 9) and args.grad_clip_percentile == 90
    assert args.keep_nbest_models in (5, [5]) and args.optim == "adamw"
    assert [tuple(c) for c in args.best_model_criterion] == [("valid", "loss", "min")]
    # ESPnet unpacks it into check_early_stopping(patience, key1, key2, mode): a flat triple
    assert list(args.early_stopping_criterion) == ["valid", "loss", "min"]
    model = task().build_model(args)
    assert model.powerset.num_classes == 11 and len(model.encoder.encoders) == 4
    (optimizer,) = task().build_optimizers(args, model)
    lrs = sorted(group["lr"] for group in optimizer.param_groups)
    if "wavlm" in name:
        assert args.frontend_conf["cnn_grad_scale"] == 0.1  # kept next to the CLI path
        assert lrs == [2e-5, 1e-3] and model.frame_shift == 320
    else:
        assert lrs == [1e-3] and model.frontend.n_mels == 80 and model.frame_shift == 160
