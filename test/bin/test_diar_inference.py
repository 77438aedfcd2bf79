import numpy as np
import pytest
import soundfile as sf

from espnet_prune.bin import diar_inference
from espnet_prune.errors import ConfigError, DataError


def write_scp(tmp_path, audio, rate=16000):
    wav = tmp_path / "a.wav"
    sf.write(wav, audio, rate)
    scp = tmp_path / "wav.scp"
    scp.write_text(f"a {wav}\n")
    return scp


def run(tmp_path, scp, *extra):
    return diar_inference.main(
        ["--model_file", str(tmp_path / "none.pth"), "--train_config", str(tmp_path / "c.yaml"),
         "--wav_scp", str(scp), "--output_dir", str(tmp_path / "out"), *extra]
    )


@pytest.mark.parametrize(
    "audio, rate, message",
    [
        (np.zeros((16000, 2), dtype=np.float32), 16000, "2 channels"),
        (np.zeros(8000, dtype=np.float32), 8000, "sample rate is 8000"),
        (np.zeros(0, dtype=np.float32), 16000, "empty"),
    ],
)
def test_bad_audio_fails_before_loading_the_model(tmp_path, audio, rate, message):
    scp = write_scp(tmp_path, audio, rate)
    with pytest.raises(DataError, match=message):
        run(tmp_path, scp)


def test_missing_wav_and_bad_config(tmp_path):
    scp = tmp_path / "wav.scp"
    scp.write_text(f"a {tmp_path / 'nope.wav'}\n")
    with pytest.raises(DataError, match="nope.wav"):
        run(tmp_path, scp)
    scp = write_scp(tmp_path, np.zeros(16000, dtype=np.float32))
    conf = tmp_path / "inference.yaml"
    conf.write_text("window: 8.0\nwindoww: 2\n")
    with pytest.raises(ConfigError, match="windoww"):
        run(tmp_path, scp, "--config", str(conf))
    conf.write_text("clustering: {name: vbx}\n")
    with pytest.raises(ConfigError, match="PLDA"):
        run(tmp_path, scp, "--config", str(conf))


def test_default_ahc_threshold_follows_the_embedding():
    from espnet_prune.infer.run import build_pipeline_parts

    _, _, clustering = build_pipeline_parts({}, {})
    assert (clustering.threshold, clustering.min_cluster_size) == (0.45, 30)
    _, _, clustering = build_pipeline_parts({"clustering": {"name": "ahc"}}, {})
    assert clustering.threshold == 0.7  # the class default, the recipe's value
