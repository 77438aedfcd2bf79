"""diar_export → diar_inference --backend onnxruntime gives the RTTM of --backend pytorch, with a
tiny (untrained, pruned-shaped) WavLM model built through the ESPnet task. Imports espnet2."""

import pytest
import torch
import yaml

pytest.importorskip("onnxruntime")

from espnet_prune.bin import diar_export, diar_inference  # noqa: E402
from espnet_prune.errors import CheckpointError, ConfigError  # noqa: E402
from espnet_prune.measure.bench import wavlm_preset  # noqa: E402

TINY = {
    "frontend": "wavlm_prunable",
    "frontend_conf": {"config": wavlm_preset("tiny_pruned").to_dict()},
    "encoder": "conformer",
    "encoder_conf": dict(
        output_size=32, attention_heads=2, linear_units=64, num_blocks=1, cnn_module_kernel=7
    ),
}


def make_exp(tmp_path, conf=TINY):
    from espnet_prune.tasks.diar import PowersetDiarizationTask

    given = tmp_path / "train.yaml"
    given.write_text(yaml.safe_dump(conf))
    args = PowersetDiarizationTask.get_parser().parse_args(["--config", str(given)])
    torch.manual_seed(0)
    model = PowersetDiarizationTask.build_model(args)
    with torch.no_grad():  # no silence: the random model then picks speakers by its input
        model.classifier.bias[0] = -10.0
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "config.yaml").write_text(yaml.safe_dump(vars(args)))
    torch.save(model.state_dict(), exp / "valid.loss.ave.pth")
    return exp


def test_onnxruntime_backend_writes_the_pytorch_rttm(tmp_path, tiny_data_dir,
                                                     one_torch_thread):
    exp = make_exp(tmp_path)
    onnx_file = tmp_path / "model.onnx"
    assert diar_export.main(["--model_file", str(exp / "valid.loss.ave.pth"),
                             "--train_config", str(exp / "config.yaml"),
                             "--output", str(onnx_file)]) == 0
    scp = tiny_data_dir / "wav.scp"  # two 6 s recordings: 4 s windows, one partial each
    conf = tmp_path / "inference.yaml"
    conf.write_text("window: 4.0\nstep: 2.0\nbatch_size: 3\n")
    common = ["--wav_scp", str(scp), "--config", str(conf), "--no_progress"]
    assert diar_inference.main(["--model_file", str(exp / "valid.loss.ave.pth"),
                                "--train_config", str(exp / "config.yaml"),
                                "--output_dir", str(tmp_path / "pt"), *common]) == 0
    assert diar_inference.main(["--backend", "onnxruntime", "--model_file", str(onnx_file),
                                "--train_config", str(exp / "config.yaml"),
                                "--output_dir", str(tmp_path / "ort"), *common]) == 0
    reference = (tmp_path / "pt" / "rttm").read_text()
    assert reference.count("SPEAKER") >= 2, reference  # something to compare
    assert (tmp_path / "ort" / "rttm").read_text() == reference

    def ort(model_file, *extra):
        return diar_inference.main(["--backend", "onnxruntime", "--model_file", str(model_file),
                                    "--output_dir", str(tmp_path / "o2"), *common, *extra])

    with pytest.raises(CheckpointError, match="valid.loss.ave.pth: not a readable ONNX model"):
        ort(exp / "valid.loss.ave.pth")
    other = dict(TINY, model_conf={"max_speakers_per_chunk": 3})
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(other))
    with pytest.raises(ConfigError, match="model.onnx: exported from another model than "
                       ".*other.yaml"):
        ort(onnx_file, "--train_config", str(tmp_path / "other.yaml"))
    with pytest.raises(ConfigError, match="--train_config is required"):
        diar_inference.main(["--model_file", str(exp / "valid.loss.ave.pth"),
                             "--output_dir", str(tmp_path / "o3"), *common])
