"""Pruning before fine-tuning (the DPHuBERT order): diar_prune distils a pre-trained WavLM
checkpoint into its gated copy on unlabelled audio (``--teacher_wavlm``, ``--unlabelled_data
true``): no RTTM or UEM is opened, no batch carries labels, the teacher is the checkpoint."""

import pytest
import torch
from diar_fixtures import make_diar_data_dir

import espnet_prune.utils.datadir as datadir
from espnet_prune.diar import data as diar_data
from espnet_prune.diar.data import DiarizationChunkDataset
from espnet_prune.errors import ConfigError
from espnet_prune.prune.model import DistillPruneModel
from espnet_prune.wavlm import WavLM, load_wavlm, save_wavlm, wavlm_config

DATA_OPTS = ["--chunk_size", "2.0", "--chunk_shift", "2.0", "--batch_size", "4",
             "--num_workers", "0", "--progress_bar", "false", "--seed", "0"]


@pytest.fixture()
def no_annotation_reads(monkeypatch):
    """Any read of an RTTM or UEM file fails the test; the data dir cache starts empty."""
    opened = []

    def refuse(kind):
        def read(path, *args, **kwargs):
            opened.append(str(path))
            raise AssertionError(f"{kind} {path} was read")
        return read

    monkeypatch.setattr(datadir, "read_rttm", refuse("RTTM"))
    monkeypatch.setattr(datadir, "read_uem", refuse("UEM"))
    monkeypatch.setattr(diar_data, "_validated", {})
    return opened


@pytest.fixture()
def pretrained(tmp_path):
    data = make_diar_data_dir(tmp_path / "data")
    torch.manual_seed(0)
    save_wavlm(WavLM(wavlm_config("tiny")), tmp_path / "wavlm_pretrained.pt")
    return data, tmp_path / "wavlm_pretrained.pt"


def prune_args(data, wavlm, output_dir):
    return [
        "--train_data_path_and_name_and_type", f"{data}/wav.scp,speech,sound",
        "--valid_data_path_and_name_and_type", f"{data}/wav.scp,speech,sound",
        *DATA_OPTS,
        "--teacher_wavlm", str(wavlm), "--unlabelled_data", "true",
        "--model_conf", "distill_layers=[0,1,3]", "--model_conf", "target_sparsity=0.5",
        "--model_conf", "warmup_epochs=1",
        "--optim", "adamw", "--optim_conf", "lr=0.0002", "--max_epoch", "2",
        "--output_dir", str(output_dir),
    ]


def test_unlabelled_dataset_reads_wav_scp_only(pretrained, no_annotation_reads):
    data, _ = pretrained
    dataset = DiarizationChunkDataset(data, chunk_size=2.0, chunk_shift=1.0, frame_shift=320,
                                      frame_length=400, labels=False)
    key, item = dataset[dataset.keys[0]]
    assert set(item) == {"speech"} and dataset.names() == ("speech",)
    assert item["speech"].shape == (32000,)
    assert no_annotation_reads == []
    # the labelled dataset of the same dir does read the RTTM (the guard works)
    with pytest.raises(AssertionError, match="RTTM"):
        DiarizationChunkDataset(data, chunk_size=2.0, chunk_shift=1.0, frame_shift=320,
                                frame_length=400)


@pytest.mark.slow
def test_prune_from_pretrained_reads_no_label(pretrained, no_annotation_reads, tmp_path,
                                              monkeypatch):
    from espnet_prune.bin import diar_prune

    data, wavlm = pretrained
    batches = []
    forward = DistillPruneModel.forward

    def recording_forward(self, speech, speech_lengths=None, spk_labels=None, **kwargs):
        batches.append((spk_labels, sorted(kwargs)))
        return forward(self, speech, speech_lengths, spk_labels, **kwargs)

    monkeypatch.setattr(DistillPruneModel, "forward", recording_forward)
    out = tmp_path / "prune"
    assert diar_prune.main(prune_args(data, wavlm, out)) == 0
    assert no_annotation_reads == []
    assert batches and all(labels is None and "spk_labels_lengths" not in keys
                           for labels, keys in batches)
    # the teacher is the pre-trained checkpoint, unchanged; the student has gates
    teacher, original = load_wavlm(out / "wavlm_teacher.pt"), load_wavlm(wavlm)
    for name, tensor in original.state_dict().items():
        assert torch.equal(teacher.state_dict()[name], tensor), name
    assert list(load_wavlm(out / "wavlm_masked.pt").gate_parameters())


def test_labels_are_read_without_the_option(pretrained, no_annotation_reads, tmp_path):
    """The same run without --unlabelled_data opens the RTTM (what the option prevents)."""
    from espnet_prune.bin import diar_prune

    data, wavlm = pretrained
    args = prune_args(data, wavlm, tmp_path / "prune")
    args[args.index("--unlabelled_data") + 1] = "false"
    with pytest.raises(AssertionError, match="RTTM"):
        diar_prune.main(args)


def test_hybrid_needs_labels(pretrained, tmp_path):
    from espnet_prune.tasks.distill_prune import DistillPruneTask

    data, wavlm = pretrained
    args = DistillPruneTask.get_parser().parse_args(
        prune_args(data, wavlm, tmp_path / "p") + ["--model_conf", "hybrid=true"])
    with pytest.raises(ConfigError, match="unlabelled_data"):
        DistillPruneTask.build_model(args)
