"""Each ESPnet 202511 work-around: ESPnet's original shows the defect, ours does not.

Run with ``ESPNET_PRUNE_DISABLE_COMPAT=1`` to see every ``test_fixed_*`` fail (the module then hands
out ESPnet's originals); once ESPnet fixes a defect its ``test_espnet_*_defect`` fails, telling us
to delete the work-around.
"""

import numpy as np
import pytest
import torch
import yaml

from espnet_prune import espnet_compat as compat  # needs espnet2 (the tools/ venv)

RTTM = (
    "SPEAKER rec1 1 0 1599 <NA> <NA> A <NA>\n"
    "SPEAKER rec1 1 800 2399 <NA> <NA> B <NA>\n"
    "END rec1 1 0 3200 <NA> <NA> <NA> <NA>\n"
)


@pytest.fixture
def sample_rttm(tmp_path):
    path = tmp_path / "rttm"
    path.write_text(RTTM)
    return path


def test_espnet_rttm_defect(sample_rttm):
    from espnet2.fileio.rttm import RttmReader

    with pytest.raises(Exception, match="return value"):
        RttmReader(str(sample_rttm))


def test_fixed_rttm_reader(sample_rttm):
    reader = compat.RttmReader(sample_rttm)
    labels = reader["rec1"]
    assert labels.shape == (3200, 2)
    assert labels[:1600, 0].all() and not labels[1600:, 0].any()
    assert labels[800:2400, 1].all() and not labels[:800, 1].any()
    assert ("rec1" in reader) is True and ("other" in reader) is False


def test_fixed_rttm_is_espnet_data_type(sample_rttm):
    from espnet2.train.dataset import DATA_TYPES

    import espnet_prune  # noqa: F401  (installs the post-import hook)

    labels = DATA_TYPES["rttm"]["func"](str(sample_rttm))["rec1"]
    assert labels.shape == (3200, 2)


def _reference_aggregate(labels: np.ndarray, win: int, hop: int) -> np.ndarray:
    frames = (labels.shape[0] - win) // hop + 1
    return np.stack(
        [(labels[i * hop : i * hop + win].sum(0) > win // 2) for i in range(frames)]
    ).astype(np.float32)


def test_espnet_label_aggregate_defect():
    from espnet2.layers.label_aggregation import LabelAggregate

    with pytest.raises(UnboundLocalError):
        LabelAggregate(win_length=400, hop_length=320, center=False)(torch.zeros(1, 16000, 2))


def test_fixed_label_aggregate_center_false():
    rng = np.random.default_rng(0)
    labels = (rng.random((2, 16000, 3)) > 0.5).astype(np.float32)
    labels[:, 4000:9000, 0] = 1.0
    agg = compat.LabelAggregate(win_length=400, hop_length=320, center=False)
    out, olens = agg(torch.from_numpy(labels), torch.tensor([16000, 8000]))
    assert out.shape == (2, 49, 3)  # WavLM framing: (16000 - 400) // 320 + 1
    np.testing.assert_array_equal(out[0].numpy(), _reference_aggregate(labels[0], 400, 320))
    assert olens.tolist() == [49, 24]
    expected = _reference_aggregate(labels[1, :8000], 400, 320)
    np.testing.assert_array_equal(out[1, :24].numpy(), expected)
    assert not out[1, 24:].any()


@pytest.fixture(scope="module")
def espnet_diar_model(tmp_path_factory):
    from espnet2.tasks.diar import DiarizationTask

    tmp = tmp_path_factory.mktemp("espnet_diar")
    args = DiarizationTask.get_parser().parse_args(
        [
            "--num_spk", "2", "--normalize", "none", "--output_dir", str(tmp),
            "--encoder", "transformer",
            "--encoder_conf",
            "{'output_size': 16, 'attention_heads': 2, 'linear_units': 16, 'num_blocks': 1}",
            "--frontend_conf", "{'n_fft': 512, 'hop_length': 128}",
        ]
    )
    torch.manual_seed(0)
    model = DiarizationTask.build_model(args)
    torch.save(model.state_dict(), tmp / "model.pth")
    (tmp / "config.yaml").write_text(yaml.safe_dump(vars(args)))
    return tmp / "config.yaml", tmp / "model.pth"


def test_espnet_diarize_speech_defect(espnet_diar_model):
    from espnet2.bin.diar_inference import DiarizeSpeech

    out = DiarizeSpeech(*map(str, espnet_diar_model), num_spk=2)(torch.randn(1, 8000), fs=16000)
    assert isinstance(out, tuple) and out[0] is None


def test_fixed_diarize_speech_returns_prediction(espnet_diar_model):
    out = compat.DiarizeSpeech(*map(str, espnet_diar_model), num_spk=2)(
        torch.randn(1, 8000), fs=16000
    )
    assert isinstance(out, np.ndarray)
    assert out.shape[0] == 1 and out.shape[2] == 2 and ((out >= 0) & (out <= 1)).all()


def test_fixed_trainer_checkpoints_are_atomic(tmp_path, monkeypatch):
    import espnet2.train.trainer as trainer_module

    def killed_mid_write(obj, f, *args, **kwargs):
        with open(f, "wb") as fh:
            fh.write(b"PK\x03\x04 truncated")
        raise KeyboardInterrupt

    target = tmp_path / "checkpoint.pth"
    torch.save({"epoch": 1}, target)
    monkeypatch.setattr(torch, "save", killed_mid_write)
    with compat.atomic_checkpoints(), pytest.raises(KeyboardInterrupt):
        trainer_module.torch.save({"epoch": 2}, target)
    monkeypatch.undo()
    # the last complete checkpoint survives the interrupted write
    assert torch.load(target, weights_only=True) == {"epoch": 1}
    assert trainer_module.torch is torch
