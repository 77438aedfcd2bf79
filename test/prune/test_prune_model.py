"""DistillPruneModel on a tiny random WavLM: frozen teacher, gradient signs, state for resume."""

import copy

import pytest
import torch

from espnet_prune.prune.model import DistillPruneModel
from espnet_prune.prune.optim import build_optimizer, param_groups
from espnet_prune.wavlm import WavLM, wavlm_config


def make_model(target="params", **kwargs):
    torch.manual_seed(0)
    teacher = WavLM(wavlm_config("tiny")).eval()
    student = copy.deepcopy(teacher)
    student.add_pruning_gates(("conv", "head", "interm"))
    conf = dict(distill_layers=[0, 1, 3], target_sparsity=0.5, warmup_steps=4, target=target)
    conf.update(kwargs)
    return DistillPruneModel(teacher, student, **conf)


def make_optimizer(model, lr=(2e-4, 2e-2, 2e-2), optim_class=torch.optim.AdamW):
    groups = param_groups(
        model,
        model.parameter_groups(),
        {"weights": lr[0], "log_alpha": lr[1], "lambda": lr[2]},
    )
    return build_optimizer(optim_class, groups)


def batch(seed=0, size=2, seconds=0.5):
    generator = torch.Generator().manual_seed(seed)
    speech = 0.1 * torch.randn(size, int(16000 * seconds), generator=generator)
    return speech, torch.tensor([speech.shape[1], speech.shape[1] - 3000])


def test_teacher_is_frozen_and_bit_identical_after_steps():
    model = make_model()
    teacher_before = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    student_before = {k: v.clone() for k, v in model.student.state_dict().items()}
    optimizer = make_optimizer(model)
    model.train()
    assert not model.teacher.training and model.student.training
    for step in range(2):
        speech, lengths = batch(step)
        loss, stats, weight = model(speech, lengths)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert all(p.grad is None for p in model.teacher.parameters())
    assert all(not p.requires_grad for p in model.teacher.parameters())
    teacher_after = model.teacher.state_dict()
    assert all(torch.equal(teacher_before[k], teacher_after[k]) for k in teacher_before)
    student_after = model.student.state_dict()
    changed = [k for k, v in student_after.items() if not torch.equal(v, student_before[k])]
    assert any("log_alpha" in k for k in changed) and any("weight" in k for k in changed)
    assert int(weight) == 2 and set(stats) >= {"distill_loss", "expected_sparsity", "lambda1"}


def test_real_gate_and_lambda_gradient_signs():
    model = make_model(l1_weight=0.0, cos_weight=0.0, warmup_steps=0)
    with torch.no_grad():
        model.lagrangian.lambda1.fill_(-1.0)  # ŝ < t has made λ1 negative
    model.train()
    speech, lengths = batch()
    loss, stats, _ = model(speech, lengths)
    gap = stats["expected_sparsity"] - stats["target_sparsity"]
    assert gap < 0
    loss.backward()
    grads = torch.cat([p.grad.flatten() for p in model.student.gate_parameters()])
    assert (grads >= 0).all() and (grads > 0).sum() > len(grads) // 2
    assert model.lagrangian.lambda1.grad.item() == pytest.approx(-gap.item(), rel=1e-5)
    assert model.lagrangian.lambda2.grad.item() == pytest.approx(-(gap**2).item(), rel=1e-5)
    before = model.expected_sparsity().item()
    torch.optim.SGD(model.student.gate_parameters(), lr=0.5).step()
    assert model.expected_sparsity().item() > before


@pytest.mark.parametrize("target", ["params", "macs"])
def test_expected_sparsity_reference_is_the_teacher(target):
    model = make_model(target=target)
    size = model.teacher.num_params() if target == "params" else model.teacher.macs_per_second()
    assert model.reference_size == size
    for gate in model.student.gates():
        gate.log_alpha.data.fill_(20.0)  # every unit kept for sure
    assert model.expected_sparsity().item() == pytest.approx(0.0, abs=1e-6)


def test_schedule_gates_and_lambdas_round_trip_through_state_dict():
    model = make_model()
    optimizer = make_optimizer(model)
    model.train()
    for step in range(3):
        loss, stats, _ = model(*batch(step))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    model(*batch(9))  # validation does not move the schedule
    assert int(model.schedule.step) == 3
    assert model.schedule.current() == pytest.approx(0.5 * 3 / 4)
    state = model.state_dict()
    assert "schedule.step" in state and "lagrangian.lambda1" in state
    restored = make_model()
    restored.load_state_dict(state)
    assert int(restored.schedule.step) == 3
    assert restored.lagrangian.lambda1.item() == model.lagrangian.lambda1.item() != 0.0
    for a, b in zip(restored.student.gate_parameters(), model.student.gate_parameters()):
        assert torch.equal(a, b)


def test_hybrid_adds_the_diarization_loss_and_trains_the_full_model(tmp_path):
    from espnet_prune.diar.encoder import PowersetConformerEncoder
    from espnet_prune.diar.frontends import WavLMPrunableFrontend
    from espnet_prune.diar.model import PowersetDiarizationModel
    from espnet_prune.tasks.distill_prune import fresh_copy
    from espnet_prune.wavlm import save_wavlm

    torch.manual_seed(0)
    save_wavlm(WavLM(wavlm_config("tiny")), tmp_path / "wavlm.pt")
    encoder = PowersetConformerEncoder(
        output_size=16, attention_heads=2, linear_units=32, num_blocks=1, cnn_module_kernel=3
    )
    diar = PowersetDiarizationModel(WavLMPrunableFrontend(str(tmp_path / "wavlm.pt")), encoder)
    teacher = fresh_copy(diar.frontend.wavlm)
    student = diar.frontend.wavlm
    student.add_pruning_gates(("conv", "head", "interm"))
    model = DistillPruneModel(
        teacher, student, distill_layers=[0, 3], diar_model=diar, diar_weight=0.5
    )
    groups = model.parameter_groups()
    assert {id(p) for p in diar.classifier.parameters()} <= {id(p) for p in groups["weights"]}
    optimizer = make_optimizer(model)
    speech, lengths = batch()
    frames = int(teacher.frame_lengths(lengths).max())
    labels = torch.zeros(2, frames, 2)
    labels[:, : frames // 2, 0] = 1
    labels[:, frames // 3 :, 1] = 1
    label_lengths = teacher.frame_lengths(lengths)
    model.train()
    classifier_before = diar.classifier.weight.clone()
    loss, stats, _ = model(speech, lengths, labels, label_lengths)
    expected = stats["distill_loss"] + stats["regularizer"] + 0.5 * stats["diar_loss"]
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    assert not torch.equal(classifier_before, diar.classifier.weight)
    with pytest.raises(Exception, match="spk_labels"):
        model(speech, lengths)


def test_default_distill_layers_are_the_papers():
    from espnet_prune.prune.model import evenly_spaced_layers
    from espnet_prune.tasks.distill_prune import model_conf_with_defaults

    assert evenly_spaced_layers(12) == [0, 4, 8, 12]
    assert evenly_spaced_layers(24) == [0, 8, 16, 24]
    assert model_conf_with_defaults({"distill_layers": "0,2"})["distill_layers"] == [0, 2]


def test_the_lagrangian_gets_the_warm_up_target_inside_the_warm_up():
    """At step 3 of a 10-step warm-up to 0.5 the regulariser is λ1(ŝ − 0.15) + λ2(ŝ − 0.15)²,
    as the reference (recipes/diar_ssl_pruning/trainer_distill_prune.py 43-47, 61-75): the
    warm-up's target, not the final one; at step 10 and after, the final 0.5."""
    model = make_model(target_sparsity=0.5, warmup_steps=10)
    with torch.no_grad():
        model.lagrangian.lambda1.fill_(0.7)
        model.lagrangian.lambda2.fill_(1.3)
    model.train()
    speech, lengths = batch()
    seen = []
    for step in range(12):
        _, stats, _ = model(speech, lengths)
        expected = float(stats["expected_sparsity"])
        target = 0.5 * min(1.0, step / 10)
        gap = expected - target
        assert float(stats["target_sparsity"]) == pytest.approx(target, abs=1e-7)
        assert float(stats["regularizer"]) == pytest.approx(0.7 * gap + 1.3 * gap * gap,
                                                            rel=1e-5, abs=1e-7)
        seen.append(target)
    assert seen[3] == pytest.approx(0.15) and seen[-1] == 0.5
