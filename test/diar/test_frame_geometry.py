"""One owner of the frame geometry: a WavLM whose CNN is not the default one, and a frontend
added by following the README, give the same frame counts in the frontend, the data chunker
(labels), the inference pipeline and the pruning task as the model really computes."""

import argparse
import re
from pathlib import Path

import pytest
import torch
import yaml

from espnet_prune.infer.pipeline import DiarizationPipeline
from espnet_prune.utils.frames import num_frames
from espnet_prune.wavlm import WavLM, save_wavlm, wavlm_config
from espnet_prune.wavlm.config import override_config

README = Path(__file__).resolve().parents[2] / "README.md"
TINY_ENCODER = ["--encoder_conf", "output_size=16", "--encoder_conf", "linear_units=32",
                "--encoder_conf", "num_blocks=1", "--encoder_conf", "attention_heads=2",
                "--encoder_conf", "cnn_module_kernel=3"]
# total stride 160 (6 layers: 240-sample frames) and 640 (8 layers: 720-sample frames)
CNN_STACKS = {
    "stride160": dict(conv_channels=[32] * 6, conv_kernels=[10, 3, 3, 3, 3, 2],
                      conv_strides=[5, 2, 2, 2, 2, 2]),
    "stride640": dict(conv_channels=[32] * 8, conv_kernels=[10, 3, 3, 3, 3, 2, 2, 2],
                      conv_strides=[5, 2, 2, 2, 2, 2, 2, 2]),
}
LENGTHS = [32000, 16001, 12345, 8719, 8000, 1000]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def task():
    from espnet_prune.tasks.diar import PowersetDiarizationTask

    return PowersetDiarizationTask


def data_options(data_dir):
    return ["--train_data_path_and_name_and_type", f"{data_dir}/wav.scp,speech,sound",
            "--valid_data_path_and_name_and_type", f"{data_dir}/wav.scp,speech,sound",
            "--chunk_size", "2.0", "--chunk_shift", "2.0", "--batch_size", "4",
            "--num_workers", "0", "--progress_bar", "false", "--seed", "0"]


def assert_frames_agree(model, geometry, measured):
    """``measured(length)``: the frames the model computes for one input of ``length``."""
    assert geometry == (model.frame_shift, model.frame_length)
    pipeline = DiarizationPipeline(None, None, model.frame_shift, model.frame_length, None, None)
    for length in LENGTHS:
        frames = measured(length)
        assert num_frames(length, *geometry) == frames, length  # the data chunker's count
        assert pipeline.frames_in(length) == frames, length  # the inference pipeline's
    speech = 0.1 * torch.randn(len(LENGTHS), max(LENGTHS))
    with torch.no_grad():  # a padded batch: each row's frame count is its own
        log_probs, frame_lengths = model.encode(speech, torch.tensor(LENGTHS))
    assert frame_lengths.tolist() == [measured(length) for length in LENGTHS]
    assert log_probs.shape[1] == measured(max(LENGTHS))


def assert_labels_fit_the_model(args, model):
    """Chunks labelled at the task's geometry have as many frames as the model outputs."""
    from espnet2.train.collate_fn import CommonCollateFn

    dataset = task().build_chunk_dataset(args, "train")
    _, batch = CommonCollateFn(0.0, -1)([dataset[key] for key in dataset.keys[:4]])
    with torch.no_grad():
        log_probs, frame_lengths = model.encode(batch["speech"], batch["speech_lengths"])
        model(**batch)  # the loss accepts them
    assert batch["spk_labels"].shape[1] == log_probs.shape[1]
    assert batch["spk_labels_lengths"].tolist() == frame_lengths.tolist()


@pytest.mark.parametrize("stack", sorted(CNN_STACKS))
def test_a_non_default_wavlm_cnn_gives_the_same_frames_everywhere(stack, tiny_data_dir, tmp_path):
    torch.manual_seed(0)
    wavlm = WavLM(override_config(wavlm_config("tiny"), CNN_STACKS[stack])).eval()
    save_wavlm(wavlm, tmp_path / "wavlm.pt")
    args = task().get_parser().parse_args([
        *data_options(tiny_data_dir), "--frontend", "wavlm_prunable",
        "--frontend_conf", f"path={tmp_path / 'wavlm.pt'}", *TINY_ENCODER])
    geometry_before_build = task().frame_geometry(args)  # from the checkpoint's config
    model = task().build_model(args).eval()
    geometry = task().frame_geometry(args)  # from frontend_conf.config (portable conf)
    assert geometry == geometry_before_build

    def measured(length):  # the CNN alone, on exactly ``length`` samples
        with torch.no_grad():
            hidden, _ = model.frontend.wavlm.extract_features(torch.zeros(1, length))
        return hidden[-1].shape[1]

    assert measured(32000) == {"stride160": 199, "stride640": 49}[stack]  # really not 320
    assert_frames_agree(model, geometry, measured)
    assert_labels_fit_the_model(args, model)

    # the pruning task labels its chunks at the teacher's frames, from either kind of teacher
    from espnet_prune.tasks.distill_prune import DistillPruneTask

    teacher_config = tmp_path / "teacher_config.yaml"
    teacher_config.write_text(yaml.safe_dump(
        {"frontend": args.frontend, "frontend_conf": args.frontend_conf}))
    for teacher in ({"teacher_config": str(teacher_config), "teacher_wavlm": None},
                    {"teacher_config": None, "teacher_wavlm": str(tmp_path / "wavlm.pt")}):
        assert DistillPruneTask.frame_geometry(argparse.Namespace(**teacher)) == geometry


def readme_recipe():
    """The code and the YAML of the README's "Adding a frontend" section."""
    section = README.read_text(encoding="utf-8").split("## Adding a frontend", 1)[1]
    section = section.split("\n## ", 1)[0]
    python = re.findall(r"```python\n(.*?)```", section, re.S)
    configs = re.findall(r"```yaml\n(.*?)```", section, re.S)
    assert len(python) == 1 and len(configs) == 2, "the README section changed its shape"
    return python[0], yaml.safe_load(configs[1])


@pytest.fixture
def readme_frontend():
    """Runs the README's code (it registers a frontend) and forgets the frontend afterwards."""
    import sys

    from espnet_prune.diar.frontends import FRONTENDS

    before = set(FRONTENDS)
    code, config = readme_recipe()
    namespace = {"__name__": "readme_frontend"}
    exec(compile(code, str(README), "exec"), namespace)
    added = set(FRONTENDS) - before
    yield config, added
    for name in added:
        FRONTENDS.pop(name)
        espnet_diar = sys.modules.get("espnet2.tasks.diar")
        if espnet_diar is not None:
            espnet_diar.frontend_choices.classes.pop(name, None)


@pytest.mark.slow
def test_the_readme_recipe_adds_a_frontend_that_trains(readme_frontend, tiny_data_dir, tmp_path):
    from espnet_prune.bin import diar_train
    from espnet_prune.diar.frontends import FRONTENDS
    from espnet_prune.diar.model_file import load_trained_model, read_train_config

    config, added = readme_frontend
    assert added == {config["frontend"]}
    config_file = tmp_path / "train_band_energy.yaml"
    config_file.write_text(yaml.safe_dump(config))
    exp = tmp_path / "exp"
    argv = ["--config", str(config_file), *data_options(tiny_data_dir), *TINY_ENCODER,
            "--optim", "adamw", "--optim_conf", "lr=0.001", "--max_epoch", "1",
            "--output_dir", str(exp)]
    assert diar_train.main(argv) == 0
    # read as inference reads it: no unpickling, strict (ESPnet's loader does neither)
    model = load_trained_model(task(), exp / "config.yaml", exp / "1epoch.pth", "cpu")
    args = argparse.Namespace(**read_train_config(exp / "config.yaml"))
    assert type(model.frontend) is FRONTENDS[config["frontend"]]
    model.eval()
    geometry = task().frame_geometry(args)
    assert geometry == FRONTENDS[config["frontend"]].frame_geometry(**config["frontend_conf"])

    def measured(length):
        with torch.no_grad():
            feats, _ = model.frontend(torch.zeros(1, length), torch.tensor([length]))
        return feats.shape[1]

    assert_frames_agree(model, geometry, measured)
    args = task().get_parser().parse_args(argv)
    assert_labels_fit_the_model(args, model)
