"""WeSpeaker ResNet34 loaded from locally made checkpoints in pyannote's distribution layout,
checked against pyannote.audio's own ResNet34 (the module that defines that layout)."""

from pathlib import Path

import numpy as np
import pytest
import torch
from pyannote_modules import pyannote_module

from espnet_prune.errors import CheckpointError
from espnet_prune.infer.embeddings import build_embedding
from espnet_prune.infer.wespeaker import WeSpeakerResNet34, load_wespeaker_resnet34


def random_state(reference: torch.nn.Module, seed=0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in reference.state_dict().items():
        if value.is_floating_point():
            value = 0.1 * torch.randn(value.shape, generator=generator)
            if "running_var" in key:
                value = value.abs() + 0.5
        state[key] = value
    return state


def pyannote_checkpoint(folder: Path, state: dict) -> Path:
    """``pytorch_model.bin`` as pyannote distributes it: a Lightning checkpoint."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "state_dict": {f"resnet.{k}": v for k, v in state.items()},
            "pyannote.audio": {
                "architecture": {"module": "pyannote.audio.models.embedding.wespeaker",
                                 "class": "WeSpeakerResNet34"},
                "versions": {"torch": torch.__version__, "pyannote.audio": "3.1.0"},
            },
            "hyper_parameters": {"sample_rate": 16000, "num_channels": 1, "num_mel_bins": 80,
                                 "frame_length": 25, "frame_shift": 10, "dither": 0.0,
                                 "window_type": "hamming", "use_energy": False},
            "epoch": 0,
            "global_step": 0,
        },
        folder / "pytorch_model.bin",
    )
    return folder


def test_pyannote_layout_loads_and_matches_pyannote_resnet(tmp_path):
    resnet = pyannote_module("pyannote.audio.models.embedding.wespeaker.resnet")
    reference = resnet.ResNet34(80, 256, pooling_func="TSTP", two_emb_layer=False).eval()
    state = random_state(reference)
    reference.load_state_dict(state)
    folder = pyannote_checkpoint(tmp_path / "wespeaker-voxceleb-resnet34-LM", state)
    ours = load_wespeaker_resnet34(folder)  # the hub snapshot directory
    assert sum(p.numel() for p in ours.parameters()) == sum(
        p.numel() for p in reference.parameters()
    )
    waveform = 0.1 * torch.randn(16000 * 2, generator=torch.Generator().manual_seed(1))
    fbank = WeSpeakerResNet34.fbank(waveform)[None]
    assert fbank.shape == (1, 198, 80)
    with torch.no_grad():
        torch.testing.assert_close(ours.resnet(fbank), reference(fbank.clone())[1])
        mask = (torch.rand(1, fbank.shape[1], generator=torch.Generator().manual_seed(2)) > 0.3)
        torch.testing.assert_close(
            ours.resnet(fbank, mask.float()), reference(fbank.clone(), weights=mask.float())[1]
        )
    extractor = build_embedding("wespeaker_resnet34", checkpoint=str(folder / "pytorch_model.bin"))
    out = extractor([waveform.numpy(), np.zeros(0, dtype=np.float32)])
    assert out.shape == (2, 256) and not out[1].any()
    with torch.no_grad():
        np.testing.assert_allclose(out[0], reference(fbank.clone())[1][0].numpy(), atol=1e-5)


def test_wrong_shape_and_missing_keys_name_the_key(tmp_path):
    state = {k.removeprefix("resnet."): v for k, v in WeSpeakerResNet34().state_dict().items()}
    # WeSpeaker's own layout (no prefix, training head present) loads too
    native = dict(state, **{"projection.weight": torch.zeros(5994, 256)})
    torch.save(native, tmp_path / "avg_model.pt")
    load_wespeaker_resnet34(tmp_path / "avg_model.pt")

    wrong = dict(state, **{"seg_1.weight": torch.zeros(256, 2560)})
    folder = pyannote_checkpoint(tmp_path / "wrong", wrong)
    with pytest.raises(CheckpointError, match=r"pytorch_model.bin.*'resnet.seg_1.weight'.*2560"):
        load_wespeaker_resnet34(folder)
    missing = {k: v for k, v in state.items() if k != "layer3.2.bn1.running_var"}
    folder = pyannote_checkpoint(tmp_path / "missing", missing)
    with pytest.raises(CheckpointError, match="resnet.layer3.2.bn1.running_var"):
        load_wespeaker_resnet34(folder)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_wespeaker_resnet34(tmp_path / "nowhere")
