"""ESPnet's S3prlFrontend accepts the registered upstream (imports espnet2: one test only)."""

import torch
from wavlm_testutils import randomize_, rel_err

import espnet_prune  # noqa: F401
from espnet_prune.wavlm import WavLM, load_wavlm, save_wavlm, wavlm_config


def test_espnet_s3prl_frontend_with_pruned_checkpoint(tmp_path):
    from espnet2.asr.frontend.s3prl import S3prlFrontend

    model = randomize_(WavLM(wavlm_config("tiny")))
    model.add_pruning_gates(["head", "interm"])
    with torch.no_grad():
        for g in model.gates():
            g.log_alpha.copy_(torch.where(torch.rand(g.n) < 0.5, 3.0, -30.0))
    model.prune()
    ckpt = tmp_path / "pruned.pt"
    save_wavlm(model, ckpt)
    frontend = S3prlFrontend(frontend_conf={"upstream": "wavlm_prunable_local",
                                            "path_or_url": str(ckpt)}, multilayer_feature=True)
    frontend.eval()
    assert frontend.output_size() == 48
    wav = torch.randn(1, 16000)
    with torch.inference_mode():
        feats, feats_len = frontend(wav, torch.tensor([16000]))
        hidden, _ = load_wavlm(ckpt).extract_features(wav)
    frames = hidden[0].shape[1]
    assert feats.shape[-1] == 48 and feats.shape[1] >= frames
    # equal layer weights (softmax of zeros): the featurizer output is the mean of L+1 states
    assert rel_err(feats[:, :frames], torch.stack(hidden).mean(0)) <= 1e-5
