"""The pruning stage through ESPnet's trainer, end to end on a tiny model and tiny data:
fine-tuned teacher → diar_prune (resumed after a stop) → wavlm_prune → diar_distill →
final diar_train with the pruned WavLM."""

import csv
import json
import shutil

import pytest
import torch
from diar_fixtures import make_diar_data_dir

from espnet_prune.wavlm import WavLM, load_wavlm, save_wavlm, wavlm_config

DATA_OPTS = ["--chunk_size", "2.0", "--chunk_shift", "2.0", "--batch_size", "4",
             "--num_workers", "0", "--progress_bar", "false", "--seed", "0"]


def data_opts(data):
    return [
        "--train_data_path_and_name_and_type", f"{data}/wav.scp,speech,sound",
        "--valid_data_path_and_name_and_type", f"{data}/wav.scp,speech,sound",
        *DATA_OPTS,
    ]


def read_steps(path):
    with open(path, encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


@pytest.fixture(scope="module")
def teacher_exp(tmp_path_factory):
    """A diarization model with the tiny WavLM frontend, fine-tuned for one epoch."""
    from espnet_prune.bin import diar_train

    root = tmp_path_factory.mktemp("teacher")
    data = make_diar_data_dir(root / "data")
    torch.manual_seed(0)
    save_wavlm(WavLM(wavlm_config("tiny")), root / "wavlm.pt")
    exp = root / "exp"
    diar_train.main([
        *data_opts(data),
        "--frontend", "wavlm_prunable", "--frontend_conf", f"path={root}/wavlm.pt",
        "--encoder_conf", "output_size=16", "--encoder_conf", "linear_units=32",
        "--encoder_conf", "num_blocks=1", "--encoder_conf", "attention_heads=2",
        "--encoder_conf", "cnn_module_kernel=3",
        "--optim", "adamw", "--optim_conf", "lr=0.001", "--max_epoch", "1",
        "--output_dir", str(exp),
    ])
    return data, exp


@pytest.mark.slow
def test_prune_resume_finalize(teacher_exp, tmp_path):
    from espnet_prune.bin import diar_distill, diar_prune, diar_train, wavlm_prune
    from espnet_prune.tasks.diar import PowersetDiarizationTask

    data, exp = teacher_exp
    diar_model, _ = PowersetDiarizationTask.build_model_from_file(
        exp / "config.yaml", exp / "1epoch.pth", "cpu"
    )
    fine_tuned = {k: v.clone() for k, v in diar_model.frontend.wavlm.state_dict().items()}
    prune_dir = tmp_path / "prune"
    prune_args = [
        *data_opts(data),
        "--teacher", str(exp / "1epoch.pth"), "--teacher_config", str(exp / "config.yaml"),
        "--model_conf", "distill_layers=[0,1,3]", "--model_conf", "target_sparsity=0.5",
        "--model_conf", "warmup_epochs=2",
        "--optim", "adamw", "--optim_conf", "lr=0.0002",
        "--output_dir", str(prune_dir), "--resume", "true",
        "--best_model_criterion", "valid,sparsity_gap,min", "--keep_nbest_models", "2",
    ]
    # first run stops after epoch 1 (as if killed after its checkpoint), the second resumes
    assert diar_prune.main([*prune_args, "--max_epoch", "1"]) == 0
    steps_first = read_steps(prune_dir / "prune_steps.tsv")
    per_epoch = len(steps_first)
    # ESPnet's resume file holds optimiser and reporter objects; this test wrote it itself
    checkpoint = torch.load(prune_dir / "checkpoint.pth", map_location="cpu", weights_only=False)
    state = checkpoint["model"]
    assert int(state["schedule.step"]) == per_epoch > 1
    assert float(state["lagrangian.lambda1"]) != 0.0
    shutil.copy(prune_dir / "checkpoint.pth", tmp_path / "epoch1_checkpoint.pth")
    # a kill during epoch 2 leaves rows of steps the checkpoint has not seen: the resumed run
    # must drop them (the last one cut off mid-write) rather than log those steps twice
    with open(prune_dir / "prune_steps.tsv", "a", encoding="utf-8") as f:
        f.write(f"{per_epoch}\t0.1\t0.1\t9\t9\t9\t9\n{per_epoch + 1}\t0.1\t0.1\t9")

    assert diar_prune.main([*prune_args, "--max_epoch", "2"]) == 0
    steps = read_steps(prune_dir / "prune_steps.tsv")
    assert [int(r["step"]) for r in steps] == list(range(2 * per_epoch))
    resumed = steps[per_epoch]  # first step after the restart: state of the checkpoint
    assert float(resumed["lambda1"]) == pytest.approx(float(state["lagrangian.lambda1"]), 1e-5)
    assert float(resumed["lambda2"]) == pytest.approx(float(state["lagrangian.lambda2"]), 1e-5)
    # warm-up continues where it was: t = 0.5 * step / (2 epochs), not back to 0
    warmup = 2 * per_epoch
    for row in steps:
        expected_target = 0.5 * min(1.0, int(row["step"]) / warmup)
        assert float(row["target_sparsity"]) == pytest.approx(expected_target, abs=1e-5)
    final = torch.load(prune_dir / "latest.pth", map_location="cpu", weights_only=True)
    gate_keys = [k for k in state if k.endswith("log_alpha")]
    assert gate_keys and int(final["schedule.step"]) == 2 * per_epoch
    assert any(not torch.equal(state[k], final[k]) for k in gate_keys)

    # exported files; the teacher is exactly the fine-tuned WavLM
    teacher = load_wavlm(prune_dir / "wavlm_teacher.pt")
    assert all(torch.equal(v, fine_tuned[k]) for k, v in teacher.state_dict().items())
    masked = load_wavlm(prune_dir / "wavlm_masked.pt")
    assert masked.config.pruning_units == ["conv", "head", "interm"]
    assert (prune_dir / "gates.png").read_bytes()[:4] == b"\x89PNG"
    summary = json.loads((prune_dir / "prune_summary.json").read_text())
    assert summary["pruned_params"] < summary["teacher_params"]
    # the exported student is the epoch whose expected sparsity is closest to the target
    assert summary["exported_checkpoint"] == "valid.sparsity_gap.best.pth"

    def gap_and_gates(epoch_file):
        state = torch.load(epoch_file, map_location="cpu", weights_only=True)
        student = load_wavlm(prune_dir / "wavlm_masked.pt")
        student.load_state_dict({k[len("student."):]: v for k, v in state.items()
                                 if k.startswith("student.")})
        with torch.no_grad():
            sparsity = 1 - float(student.expected_num_params()) / teacher.num_params()
        return abs(sparsity - 0.5), [g.detach().clone() for g in student.gate_parameters()]

    gaps = {n: gap_and_gates(prune_dir / f"{n}epoch.pth") for n in (1, 2)}
    best = min(gaps, key=lambda n: gaps[n][0])
    assert (prune_dir / "valid.sparsity_gap.best.pth").resolve().name == f"{best}epoch.pth"
    assert all(torch.equal(a, b) for a, b in zip(masked.gate_parameters(), gaps[best][1]))

    # finalize: physical pruning, post-pruning distillation, final fine-tune
    assert wavlm_prune.main(["--input", str(prune_dir / "wavlm_masked.pt"),
                             "--output", str(prune_dir / "wavlm_pruned_raw.pt")]) == 0
    raw = load_wavlm(prune_dir / "wavlm_pruned_raw.pt")
    assert raw.num_params() == summary["pruned_params"]
    post_dir = prune_dir / "post_distill"
    assert diar_distill.main([
        *data_opts(data),
        "--teacher_wavlm", str(prune_dir / "wavlm_teacher.pt"),
        "--student_wavlm", str(prune_dir / "wavlm_pruned_raw.pt"),
        "--model_conf", "distill_layers=[0,1,3]", "--optim", "adamw",
        "--optim_conf", "lr=0.0002", "--max_epoch", "1",
        "--output_dir", str(post_dir), "--export_dir", str(prune_dir),
    ]) == 0
    post_state = torch.load(post_dir / "latest.pth", map_location="cpu", weights_only=True)
    assert not any("lagrangian" in k or "schedule" in k for k in post_state)
    pruned = load_wavlm(prune_dir / "wavlm_pruned.pt")
    assert pruned.num_params() == raw.num_params() and not pruned.config.pruning_units
    changed = [k for k, v in pruned.state_dict().items() if not torch.equal(v, raw.state_dict()[k])]
    assert changed  # the post-pruning distillation trained the student

    final_dir = tmp_path / "final"
    diar_train.main([
        *data_opts(data),
        "--frontend", "wavlm_prunable", "--frontend_conf", f"path={prune_dir}/wavlm_pruned.pt",
        "--encoder_conf", "output_size=16", "--encoder_conf", "linear_units=32",
        "--encoder_conf", "num_blocks=1", "--encoder_conf", "attention_heads=2",
        "--encoder_conf", "cnn_module_kernel=3",
        "--optim", "adamw", "--optim_conf", "lr=0.001", "--upstream_lr", "0.00002",
        "--max_epoch", "1", "--output_dir", str(final_dir),
    ])
    final_model, _ = PowersetDiarizationTask.build_model_from_file(
        final_dir / "config.yaml", final_dir / "1epoch.pth", "cpu"
    )
    assert final_model.frontend.wavlm.num_params() == raw.num_params()


def test_bad_teacher_and_model_conf_are_one_clear_error(teacher_exp, tmp_path):
    from espnet_prune.bin import diar_distill, diar_prune
    from espnet_prune.errors import CheckpointError, ConfigError

    data, exp = teacher_exp
    common = [*data_opts(data), "--output_dir", str(tmp_path / "out"), "--max_epoch", "1"]
    with pytest.raises(CheckpointError, match="missing.pth"):
        diar_prune.main([*common, "--teacher", str(tmp_path / "missing.pth"),
                         "--teacher_config", str(exp / "config.yaml")])
    with pytest.raises(ConfigError, match="unknown model_conf keys.*target_sparsty"):
        diar_prune.main([*common, "--teacher", str(exp / "1epoch.pth"),
                         "--teacher_config", str(exp / "config.yaml"),
                         "--model_conf", "target_sparsty=0.8"])
    with pytest.raises(ConfigError, match="student_wavlm"):
        diar_distill.main([*common, "--teacher_wavlm", str(tmp_path / "t.pt")])
