"""Pruning-stage details that follow the reference recipe (DiariZen diar_ssl_pruning):
CNN gradient x0.1 in the student, post-warm-up early stopping, and the exported checkpoint =
the average of the 5 best epochs after the validation-loss peak (gates included)."""

import numpy as np
import pytest
import torch

from espnet_prune.errors import CheckpointError, ConfigError
from espnet_prune.prune.export import (
    WARMUP_SCORE,
    average_epoch_files,
    early_stop_score,
    post_peak_epochs,
    resolve_export_policy,
    select_export_checkpoint,
    validation_history,
)
from espnet_prune.wavlm import WavLM, save_wavlm, wavlm_config


# ----------------------------------------------------------------------- CNN gradient x0.1
def build_prune_model(tmp_path, *model_conf):
    from espnet_prune.tasks.distill_prune import DistillPruneTask

    torch.manual_seed(0)
    teacher = WavLM(wavlm_config("tiny"))
    save_wavlm(teacher, tmp_path / "teacher.pt")
    args = DistillPruneTask.get_parser().parse_args([
        "--teacher_wavlm", str(tmp_path / "teacher.pt"),
        "--model_conf", "distill_layers=[0,1,3]", "--model_conf", "target_sparsity=0.5",
        *[x for conf in model_conf for x in ("--model_conf", conf)],
    ])
    model = DistillPruneTask.build_model(args)
    return model, args


def conv_gate_grads(model, distill_only=True):
    """Gradient on the conv gates of the distillation loss, or of the expected sparsity (what
    the Lagrangian term differentiates), under the same hard-concrete samples."""
    from espnet_prune.prune.distill import distillation_loss

    with torch.no_grad():  # gates off saturation, identical for every model built here
        for i, gate in enumerate(model.student.gates()):
            gate.log_alpha.copy_(torch.linspace(-1.0, 1.0, gate.log_alpha.numel()) + 0.1 * i)
    model.train()
    model.zero_grad()
    if distill_only:
        speech = 0.1 * torch.randn(2, 4000, generator=torch.Generator().manual_seed(0))
        lengths = torch.tensor([4000, 4000])
        torch.manual_seed(1)
        with torch.no_grad():
            teacher, frames = model.teacher.extract_features(speech, lengths)
        student, _ = model.student.extract_features(speech, lengths)
        target, _ = distillation_loss(student, teacher, model.distill_layers, frames)
    else:
        target = model.expected_sparsity()
    target.backward()
    return [layer.gate.log_alpha.grad.clone()
            for layer in model.student.feature_extractor.conv_layers]


def test_student_cnn_gets_a_tenth_of_the_distillation_gradient(tmp_path):
    scaled, args = build_prune_model(tmp_path)
    assert scaled.student.cnn_grad_scale == 0.1 and args.model_conf["cnn_grad_scale"] == 0.1
    assert scaled.teacher.cnn_grad_scale == 1.0  # frozen, no_grad anyway
    unscaled, _ = build_prune_model(tmp_path, "cnn_grad_scale=1.0")
    assert unscaled.student.cnn_grad_scale == 1.0
    for a, b in zip(conv_gate_grads(scaled), conv_gate_grads(unscaled)):
        assert b.abs().sum() > 0
        torch.testing.assert_close(a, 0.1 * b, rtol=1e-4, atol=1e-10)


def test_sparsity_term_gradient_on_conv_gates_is_not_scaled(tmp_path):
    scaled, _ = build_prune_model(tmp_path)
    unscaled, _ = build_prune_model(tmp_path, "cnn_grad_scale=1.0")
    for a, b in zip(conv_gate_grads(scaled, False), conv_gate_grads(unscaled, False)):
        assert b.abs().sum() > 0 and torch.equal(a, b)


# ----------------------------------------------------------------------- early stopping
def test_early_stop_score_counts_only_epochs_after_the_warm_up():
    loss = torch.tensor(-0.7)
    warmup = 100
    scores = [float(early_stop_score(loss, step, warmup)) for step in (20, 60, 100)]
    assert scores[0] > scores[1] > scores[2] >= WARMUP_SCORE > 10  # the latest warm-up "best"
    assert float(early_stop_score(loss, 101, warmup)) == pytest.approx(-0.7)
    assert float(early_stop_score(loss, 1, 0)) == pytest.approx(-0.7)  # no warm-up


def test_espnet_early_stopping_with_the_score_waits_for_the_warm_up():
    """ESPnet's check_early_stopping on early_stop_loss with patience 4 stops where the
    reference (patience 5, counted after warm-up epoch 5) stops: 5 epochs after the best."""
    from espnet2.train.reporter import Reporter

    spe, warmup_epochs = 10, 5
    # distillation loss rises during warm-up, best at epoch 7, then no improvement
    distill = {1: 0.1, 2: 0.2, 3: 0.3, 4: 0.5, 5: 0.6, 6: 0.4, 7: 0.3, 8: 0.31, 9: 0.32,
               10: 0.33, 11: 0.34, 12: 0.35, 13: 0.36}
    reporter = Reporter()
    stopped = None
    for epoch in sorted(distill):
        reporter.set_epoch(epoch)
        with reporter.observe("valid") as sub:
            score = early_stop_score(torch.tensor(distill[epoch]), epoch * spe,
                                     warmup_epochs * spe)
            sub.register({"early_stop_loss": float(score)}, weight=1)
            sub.next()
        if reporter.check_early_stopping(4, "valid", "early_stop_loss", "min"):
            stopped = epoch
            break
    assert stopped == 12  # best 7 + 5, and never during the warm-up (epoch 1 is the raw best)


# ----------------------------------------------------------------------- checkpoint choice
def test_post_peak_epochs_is_the_reference_rule():
    history = {1: 0.5, 2: 0.9, 3: 1.4, 4: 1.2, 5: 0.8, 6: 0.7, 7: 0.75, 8: 0.6, 9: 0.65,
               10: 0.66, 11: 0.1}
    assert post_peak_epochs(history, 5) == [11, 8, 9, 10, 6]
    # epochs before the peak never count, even with lower loss
    assert 1 not in post_peak_epochs(history, 9)
    assert post_peak_epochs({1: 2.0, 2: 1.0, 3: 2.0}, 5) == [2, 1, 3]  # first peak on ties
    assert post_peak_epochs({1: 1.0, 2: 1.0}, 1) == [1]


def fake_run(tmp_path, history, with_numpy=True):
    """An ESPnet output dir: {e}epoch.pth state dicts (a frozen teacher, changing student
    weights and gates, an integer buffer) and checkpoint.pth with the reporter's stats."""
    run = tmp_path / "run"
    run.mkdir()
    teacher = torch.randn(3, 4)
    for epoch in history:
        torch.save({
            "teacher.w": teacher.clone(),
            "student.w": torch.full((3, 4), float(epoch)),
            "student.gate.log_alpha": torch.tensor([epoch, -epoch, 2.0 * epoch]),
            "schedule.step": torch.tensor(10 * epoch),
        }, run / f"{epoch}epoch.pth")
    value = np.float64 if with_numpy else float
    stats = {e: {"train": {"loss": value(0.0)}, "valid": {"loss": value(v), "distill_loss":
                                                          value(v - 1)}}
             for e, v in history.items()}
    torch.save({"model": {}, "reporter": {"stats": stats, "epoch": max(history)},
                "optimizers": [], "schedulers": [None], "scaler": None}, run / "checkpoint.pth")
    return run, teacher


def test_exported_checkpoint_is_the_average_of_the_chosen_five(tmp_path):
    history = {1: 0.2, 2: 0.5, 3: 0.9, 4: 0.7, 5: 0.4, 6: 0.35, 7: 0.3, 8: 0.33, 9: 0.31,
               10: 0.36}
    run, teacher = fake_run(tmp_path, history)
    assert validation_history(run) == pytest.approx(history)
    name, info = select_export_checkpoint(run, "post_peak_average", nbest=5)
    chosen = [7, 9, 8, 6, 10]
    assert info["averaged_epochs"] == chosen and info["peak_epoch"] == 3
    averaged = torch.load(run / name, weights_only=True)
    assert name == "valid.loss.post_peak_ave_5best.pth"
    assert torch.equal(averaged["student.w"], torch.full((3, 4), sum(chosen) / 5))
    torch.testing.assert_close(averaged["student.gate.log_alpha"],
                               torch.tensor([1.0, -1.0, 2.0]) * sum(chosen) / 5)
    assert torch.equal(averaged["teacher.w"], teacher)  # bit-exact, not re-rounded
    assert int(averaged["schedule.step"]) == 70  # integer buffer: the best epoch's
    # another criterion
    name, info = select_export_checkpoint(run, "post_peak_average", nbest=2,
                                          criterion="distill_loss")
    assert info["averaged_epochs"] == [7, 9] and name.endswith("_2best.pth")


def test_missing_epoch_files_and_bad_configs_are_clear_errors(tmp_path):
    run, _ = fake_run(tmp_path, {1: 0.5, 2: 0.9, 3: 0.4})
    (run / "3epoch.pth").unlink()
    with pytest.raises(CheckpointError, match="3epoch.pth.*keep_nbest_models"):
        select_export_checkpoint(run, "post_peak_average")
    with pytest.raises(CheckpointError, match="valid.nope"):
        validation_history(run, "nope")
    with pytest.raises(ConfigError, match="keep_nbest_models above max_epoch"):
        resolve_export_policy("post_peak_average", [["valid", "loss", "min"]], [5], 30, "best")
    assert resolve_export_policy("post_peak_average", [], 31, 30, "best") == "post_peak_average"
    assert resolve_export_policy("auto", [["valid", "loss", "min"]], 1, 30, "closest") == "latest"
    assert resolve_export_policy("auto", [["valid", "sparsity_gap", "min"]], 1, 30,
                                 "closest") == "closest"
    assert resolve_export_policy("auto", [], 1, 30, "best") == "best"
    with pytest.raises(ConfigError, match="sparsity_gap"):
        resolve_export_policy("closest", [["valid", "loss", "min"]], 1, 30, "closest")


def test_reporter_state_is_read_without_unpickling_code(tmp_path):
    run, _ = fake_run(tmp_path, {1: 0.5, 2: 0.4})

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"reporter": {"stats": {1: {"valid": {"loss": Evil()}}}}}, run / "checkpoint.pth")
    with pytest.raises(CheckpointError, match="reporter"):
        validation_history(run)


def test_average_epoch_files_single_epoch_is_a_copy(tmp_path):
    run, _ = fake_run(tmp_path, {1: 0.5, 2: 0.4})
    out = average_epoch_files(run, [2], "one.pth")
    assert torch.equal(torch.load(out, weights_only=True)["student.w"],
                       torch.full((3, 4), 2.0))


def test_diar_prune_exports_the_average_of_the_chosen_epochs(tmp_path):
    """Through the CLI and ESPnet's trainer: wavlm_masked.pt (what wavlm_prune prunes) is the
    student of the averaged epochs, gates included, chosen by the reference's rule."""
    import json

    from diar_fixtures import make_diar_data_dir

    from espnet_prune.bin import diar_prune
    from espnet_prune.wavlm import load_wavlm

    data = make_diar_data_dir(tmp_path / "data")
    torch.manual_seed(0)
    save_wavlm(WavLM(wavlm_config("tiny")), tmp_path / "teacher.pt")
    out = tmp_path / "prune"
    assert diar_prune.main([
        "--train_data_path_and_name_and_type", f"{data}/wav.scp,speech,sound",
        "--valid_data_path_and_name_and_type", f"{data}/wav.scp,speech,sound",
        "--chunk_size", "2.0", "--chunk_shift", "2.0", "--batch_size", "4",
        "--num_workers", "0", "--progress_bar", "false", "--seed", "0",
        "--teacher_wavlm", str(tmp_path / "teacher.pt"),
        "--model_conf", "distill_layers=[0,1,3]", "--model_conf", "target_sparsity=0.5",
        "--model_conf", "warmup_epochs=2", "--log_alpha_lr", "0.1", "--lambda_lr", "0.1",
        "--optim", "adamw", "--optim_conf", "lr=0.0002", "--max_epoch", "5",
        "--keep_nbest_models", "6", "--best_model_criterion", "valid,loss,min",
        "--patience", "4", "--early_stopping_criterion", "valid", "early_stop_loss", "min",
        "--export_policy", "post_peak_average", "--export_nbest", "3",
        "--output_dir", str(out), "--use_matplotlib", "false",
    ]) == 0
    summary = json.loads((out / "prune_summary.json").read_text())
    history = validation_history(out)
    assert sorted(history) == [1, 2, 3, 4, 5]
    chosen = post_peak_epochs(history, 3)
    assert summary["averaged_epochs"] == chosen and len(chosen) >= 1
    assert summary["exported_checkpoint"] == f"valid.loss.post_peak_ave_{len(chosen)}best.pth"
    states = [torch.load(out / f"{e}epoch.pth", weights_only=True) for e in chosen]
    masked = load_wavlm(out / "wavlm_masked.pt").state_dict()
    gates = [k for k in masked if k.endswith("log_alpha")]
    assert gates
    for key, value in masked.items():
        if value.is_floating_point():
            mean = sum(s["student." + key].double() for s in states) / len(states)
            torch.testing.assert_close(value, mean.to(value.dtype), rtol=1e-6, atol=1e-7)
    if len(chosen) > 1:  # the average is none of the epochs
        assert not any(torch.equal(masked[gates[0]], s["student." + gates[0]]) for s in states)


# ----------------------------------------------------------------------- paper configs
CONF = __import__("pathlib").Path(__file__).resolve().parents[2] / "egs2/TEMPLATE/diar1/conf"


@pytest.mark.parametrize("name", ["prune_s80.yaml", "prune_s90.yaml", "prune_large_s80.yaml",
                                  "prune_large_s90.yaml", "distill_post.yaml"])
def test_paper_pruning_configs_use_the_reference_rules(name):
    from espnet_prune.prune.export import export_policy
    from espnet_prune.tasks.distill_prune import DistillPruneTask, model_conf_with_defaults

    args = DistillPruneTask.get_parser().parse_args(["--config", str(CONF / name)])
    assert model_conf_with_defaults(args.model_conf)["cnn_grad_scale"] == 0.1
    assert export_policy(args) == "post_peak_average" and args.export_nbest == 5
    assert args.export_criterion == "loss" and max([args.keep_nbest_models]
                                                   if isinstance(args.keep_nbest_models, int)
                                                   else args.keep_nbest_models) > args.max_epoch
    assert args.patience == 4 and args.grad_clip_percentile == 90
    assert args.grad_clip == float("inf") and args.grad_clip_history == 1000
    criterion = "loss" if name == "distill_post.yaml" else "early_stop_loss"
    assert list(args.early_stopping_criterion) == ["valid", criterion, "min"]
    assert args.batch_size == (32 if "large" in name else 64)  # post-distillation: 16 per GPU


@pytest.mark.parametrize("name", ["train_teacher_wavlm_base_plus.yaml",
                                  "train_pruned_wavlm_large.yaml"])
def test_paper_diarization_configs_give_the_wavlm_the_reference_dropout(name, tmp_path):
    from espnet_prune.tasks.diar import PowersetDiarizationTask
    from espnet_prune.wavlm.config import DROPOUT_FIELDS, REFERENCE_DROPOUT

    torch.manual_seed(0)
    save_wavlm(WavLM(wavlm_config("tiny")), tmp_path / "w.pt")
    args = PowersetDiarizationTask.get_parser().parse_args(
        ["--config", str(CONF / name), "--frontend_conf", f"path={tmp_path}/w.pt"])
    wavlm = PowersetDiarizationTask.build_model(args).frontend.wavlm
    assert {f: getattr(wavlm.config, f) for f in DROPOUT_FIELDS} == REFERENCE_DROPOUT
    assert wavlm.encoder.layers[0].dropout.p == 0.1
    assert wavlm.feature_projection.dropout.p == 0.1
