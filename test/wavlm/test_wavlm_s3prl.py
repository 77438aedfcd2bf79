"""s3prl {"cfg","model"} conversion vs s3prl's own WavLM class, and the s3prl upstream."""

import pytest
import torch
from wavlm_testutils import randomize_, rel_err

import espnet_prune  # noqa: F401  (installs the s3prl registration hook)
from espnet_prune.errors import CheckpointError
from espnet_prune.wavlm import WavLM, load_wavlm, save_wavlm, wavlm_config
from espnet_prune.wavlm.convert import convert_s3prl

S3PRL_CFG = dict(encoder_layers=2, encoder_embed_dim=64, encoder_ffn_embed_dim=96,
                 encoder_attention_heads=4, conv_feature_layers="[(32,10,5)] + [(32,3,2)] * 4 + "
                 "[(32,2,2)] * 2", conv_pos=16, conv_pos_groups=4,
                 relative_position_embedding=True, gru_rel_pos=True, num_buckets=320,
                 max_distance=800)


@pytest.mark.parametrize("large", [False, True])
def test_s3prl_checkpoint_matches_s3prl_wavlm(tmp_path, large):
    from s3prl.upstream.wavlm.WavLM import WavLM as S3prlWavLM
    from s3prl.upstream.wavlm.WavLM import WavLMConfig as S3prlConfig

    cfg = dict(S3PRL_CFG, extractor_mode="layer_norm" if large else "default",
               layer_norm_first=large, conv_bias=large, normalize=large)
    ref = randomize_(S3prlWavLM(S3prlConfig(cfg))).eval()
    path = tmp_path / "WavLM-tiny.pt"
    torch.save({"cfg": cfg, "model": ref.state_dict()}, path)
    ours = convert_s3prl(str(path))
    wav = torch.randn(2, 12000)
    with torch.inference_mode():
        inputs = []
        hooks = [layer.register_forward_hook(lambda m, i, o: inputs.append(o[0].transpose(0, 1)))
                 for layer in ref.encoder.layers]
        x0 = []
        hooks.append(ref.encoder.layers[0].register_forward_pre_hook(
            lambda m, i: x0.append(i[0].transpose(0, 1))))
        # s3prl's expert normalises each waveform itself when cfg["normalize"] is set
        ref_wav = torch.nn.functional.layer_norm(wav, wav.shape[-1:]) if large else wav
        final, _ = ref.extract_features(ref_wav)
        for h in hooks:
            h.remove()
        expected = x0 + inputs
        out, _ = ours.extract_features(wav)
        assert len(out) == len(expected) == 3
        errs = [rel_err(a, b) for a, b in zip(out, expected)]
        assert max(errs) <= 1e-5, errs
        # s3prl's encoder output additionally applies the final LayerNorm of pre-LN models
        last = ours.encoder.layer_norm(out[-1]) if large else out[-1]
        assert rel_err(last, final) <= 1e-5
    assert ours.config.normalize_waveform == large


def test_s3prl_checkpoint_unknown_and_missing_keys(tmp_path):
    from s3prl.upstream.wavlm.WavLM import WavLM as S3prlWavLM
    from s3prl.upstream.wavlm.WavLM import WavLMConfig as S3prlConfig

    cfg = dict(S3PRL_CFG, extractor_mode="default")
    state = S3prlWavLM(S3prlConfig(cfg)).state_dict()
    path = tmp_path / "bad.pt"
    torch.save({"cfg": cfg, "model": dict(state, **{"final_proj.weight": torch.zeros(2)})}, path)
    with pytest.raises(CheckpointError, match=r"bad\.pt.*unknown key 'final_proj\.weight'"):
        convert_s3prl(str(path))
    del state["encoder.layers.1.fc1.bias"]
    torch.save({"cfg": cfg, "model": state}, path)
    with pytest.raises(CheckpointError, match=r"missing key 'encoder\.layers\.1\.feed_forward"):
        convert_s3prl(str(path))


def _tiny_checkpoints(tmp_path):
    model = randomize_(WavLM(wavlm_config("tiny"))).eval()
    save_wavlm(model, tmp_path / "full.pt")
    model.add_pruning_gates(["conv", "head", "interm"])
    with torch.no_grad():
        for g in model.gates():
            g.log_alpha.copy_(torch.where(torch.rand(g.n) < 0.5, 3.0, -30.0))
            g.log_alpha[0] = 3.0
    model.prune()
    save_wavlm(model, tmp_path / "pruned.pt")
    return [tmp_path / "full.pt", tmp_path / "pruned.pt"]


def test_s3prl_upstream_registered_after_import(tmp_path):
    from s3prl.nn import S3PRLUpstream

    assert "wavlm_prunable_local" in S3PRLUpstream.available_names()
    for ckpt in _tiny_checkpoints(tmp_path):
        upstream = S3PRLUpstream("wavlm_prunable_local", path_or_url=str(ckpt)).eval()
        assert upstream.num_layers == 4 and upstream.downsample_rates == [320] * 4
        wav = torch.randn(2, 8000)
        lengths = torch.tensor([8000, 6000])
        with torch.inference_mode():
            hs, hs_len = upstream(wav, lengths)
            ref, _ = load_wavlm(ckpt).extract_features(wav[:1])
        # s3prl pads/trims to its own length rule (ceil(len / 320)); our CNN gives 24 frames
        assert len(hs) == 4 and ref[0].shape[1] == 24 and hs[0].shape[1] >= 24
        assert max(rel_err(a[:1, :24], b) for a, b in zip(hs, ref)) <= 1e-5
        assert hs[0].shape[-1] == 48
