"""Lagrangian sign conventions, warm-up schedule, distillation loss, optimiser groups, plot."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from espnet_prune.errors import ConfigError
from espnet_prune.prune.distill import distillation_loss
from espnet_prune.prune.lagrangian import SparsityLagrangian
from espnet_prune.prune.optim import build_optimizer, param_groups
from espnet_prune.prune.plot import plot_kept_units
from espnet_prune.prune.schedule import TargetSchedule

BETA, LEFT, RIGHT = 2 / 3, -0.1, 1.1


def hard_concrete_keep_probability(log_alpha):
    return torch.sigmoid(log_alpha - BETA * math.log(-LEFT / RIGHT))


@pytest.mark.parametrize("optim_class", [torch.optim.SGD, torch.optim.Adam])
def test_lambda_gradient_is_ascent(optim_class):
    lagrangian = SparsityLagrangian()
    expected, target = torch.tensor(0.3), 0.8  # not sparse enough: gap = -0.5
    lagrangian(expected, target).backward()
    # d/dλ1 = gap = -0.5 and d/dλ2 = gap² = 0.25; stored gradients are negated (ascent)
    assert lagrangian.lambda1.grad.item() == pytest.approx(0.5)
    assert lagrangian.lambda2.grad.item() == pytest.approx(-0.25)
    before = lagrangian(expected, target).item()
    optimizer = optim_class(lagrangian.parameters(), lr=0.1)
    optimizer.step()
    assert lagrangian.lambda1.item() < 0 < lagrangian.lambda2.item()
    assert lagrangian(expected, target).item() > before  # the optimiser step climbed the term


def test_log_alpha_gradient_descends_towards_target():
    log_alpha = nn.Parameter(torch.full((8,), 3.0))
    lagrangian = SparsityLagrangian()
    with torch.no_grad():
        lagrangian.lambda1.fill_(-1.0)  # what ascent produces while ŝ < t
        lagrangian.lambda2.fill_(0.5)
    target = 0.8
    sparsity_before = 1 - hard_concrete_keep_probability(log_alpha).mean()
    lagrangian(sparsity_before, target).backward()
    # raising log α keeps more units (lower ŝ) which would widen the gap: gradient > 0
    assert (log_alpha.grad > 0).all()
    torch.optim.SGD([log_alpha], lr=1.0).step()
    sparsity_after = 1 - hard_concrete_keep_probability(log_alpha).mean()
    assert sparsity_before.item() < sparsity_after.item() < target


def test_lagrangian_drives_expected_sparsity_onto_target():
    log_alpha = nn.Parameter(torch.full((64,), 2.0))
    lagrangian = SparsityLagrangian()
    optimizer = torch.optim.Adam(
        [{"params": [log_alpha], "lr": 0.05}, {"params": lagrangian.parameters(), "lr": 0.05}]
    )
    for _ in range(600):
        optimizer.zero_grad()
        sparsity = 1 - hard_concrete_keep_probability(log_alpha).mean()
        lagrangian(sparsity, 0.8).backward()
        optimizer.step()
    final = 1 - hard_concrete_keep_probability(log_alpha).mean()
    assert abs(final.item() - 0.8) < 0.01


def test_warmup_schedule_is_linear_then_constant():
    schedule = TargetSchedule(0.8, warmup_steps=10)
    values = []
    for _ in range(15):
        values.append(schedule.current())
        schedule.advance()
    assert values[0] == 0.0
    assert values[5] == pytest.approx(0.4)
    assert values[10] == pytest.approx(0.8)
    assert values[14] == pytest.approx(0.8)
    steps = torch.diff(torch.tensor(values[:11]))
    assert torch.allclose(steps, torch.full_like(steps, 0.08))


def test_schedule_position_is_state():
    schedule = TargetSchedule(0.9, warmup_steps=100)
    for _ in range(37):
        schedule.advance()
    restored = TargetSchedule(0.9, warmup_steps=100)
    assert restored.current() == 0.0
    restored.load_state_dict(schedule.state_dict())
    assert int(restored.step) == 37
    assert restored.current() == pytest.approx(0.9 * 0.37)
    assert TargetSchedule(0.9, warmup_steps=0).current() == 0.9
    with pytest.raises(ConfigError):
        TargetSchedule(1.2, warmup_steps=10)


def reference_distillation(student, teacher, layers, lengths):
    """The reference's formula: real frames of the distilled layers stacked into one
    (layer, frame, dim) tensor, then torch's l1_loss (mean over everything) minus the mean
    cosine similarity."""
    def stack(hiddens):
        return torch.stack([torch.cat([hiddens[layer][b, :n] for b, n in
                                       enumerate(lengths.tolist())]) for layer in layers])

    s, t = stack(student), stack(teacher)
    return (F.l1_loss(s, t) - F.cosine_similarity(s, t, dim=-1).mean()).item()


def test_distillation_loss_matches_reference_and_ignores_padding():
    torch.manual_seed(0)
    teacher = [torch.randn(3, 7, 5) for _ in range(4)]
    student = [(t + 0.3 * torch.randn_like(t)).requires_grad_() for t in teacher]
    lengths = torch.tensor([7, 4, 2])
    loss, stats = distillation_loss(student, teacher, [0, 1, 3], lengths)
    reference = reference_distillation(student, teacher, [0, 1, 3], lengths)
    assert loss.item() == pytest.approx(reference)
    assert 0 < stats["distill_cos"].item() < 1
    loss.backward()
    assert student[2].grad is None and student[1].grad.abs().sum() > 0
    assert student[1].grad[2, 2:].abs().sum() == 0  # padded frames get no gradient
    padded = [t.detach().clone() for t in student]
    for t in padded:
        t[1, 4:] = 100.0
    again, _ = distillation_loss(padded, teacher, [0, 1, 3], lengths)
    assert again.item() == pytest.approx(loss.item())
    same, _ = distillation_loss(teacher, teacher, [0, 1, 3], lengths)
    assert same.item() == pytest.approx(-1.0)  # the mean over layers, not the sum (-3)
    weighted, _ = distillation_loss(student, teacher, [0], lengths, l1_weight=2.0, cos_weight=0.0)
    assert weighted.item() == pytest.approx(
        2 * F.l1_loss(torch.cat([student[0][b, :n] for b, n in enumerate([7, 4, 2])]),
                      torch.cat([teacher[0][b, :n] for b, n in enumerate([7, 4, 2])])).item()
    )
    with pytest.raises(ConfigError, match="layer 9"):
        distillation_loss(student, teacher, [9], lengths)


def test_distillation_loss_is_the_mean_of_the_per_layer_terms():
    torch.manual_seed(1)
    teacher = [torch.randn(2, 6, 4) for _ in range(5)]
    student = [t + 0.5 * torch.randn_like(t) for t in teacher]
    layers = [0, 2, 4]
    per_layer = [distillation_loss(student, teacher, [layer])[0].item() for layer in layers]
    loss, stats = distillation_loss(student, teacher, layers)
    assert loss.item() == pytest.approx(sum(per_layer) / len(layers))
    assert loss.item() != pytest.approx(sum(per_layer))
    assert (stats["distill_l1"] - stats["distill_cos"]).item() == pytest.approx(loss.item())


def test_param_groups_learning_rates_and_coverage():
    model = nn.Module()
    model.weights = nn.Linear(3, 3)
    model.log_alpha = nn.Parameter(torch.zeros(4))
    model.lagrangian = SparsityLagrangian()
    model.frozen = nn.Linear(2, 2).requires_grad_(False)
    groups = param_groups(
        model,
        {
            "weights": model.weights.parameters(),
            "log_alpha": [model.log_alpha],
            "lambda": model.lagrangian.parameters(),
            "unused": [],
        },
        {"weights": 2e-4, "log_alpha": 2e-2, "lambda": 2e-2, "unused": 1.0},
    )
    assert [(g["name"], g["lr"], g["weight_decay"], len(g["params"])) for g in groups] == [
        ("weights", 2e-4, 0.0, 2),
        ("log_alpha", 2e-2, 0.0, 1),
        ("lambda", 2e-2, 0.0, 2),
    ]
    optimizer = build_optimizer(torch.optim.AdamW, groups, lr=1.0, weight_decay=0.01)
    assert [g["lr"] for g in optimizer.param_groups] == [2e-4, 2e-2, 2e-2]
    assert all(g["weight_decay"] == 0.0 for g in optimizer.param_groups)
    with pytest.raises(ValueError, match="no optimiser group"):
        param_groups(model, {"weights": model.weights.parameters()}, {"weights": 1.0})


def test_plot_is_written(tmp_path):
    path = plot_kept_units(
        {"conv": [10, 8], "head": [2, 0, 1], "interm": [30, 12, 0]},
        {"conv": [16, 16], "head": [4, 4, 4], "interm": [64, 64, 64]},
        tmp_path / "gates.png",
        title="sparsity 0.80",
    )
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_kept_units_of_a_pruned_config():
    from espnet_prune.prune.plot import kept_units
    from espnet_prune.wavlm import wavlm_config

    config = wavlm_config("tiny")
    config.kept_heads = [[0, 2], [], [1, 2, 3]]
    config.use_attention = [True, False, True]
    config.ffn_dims = [10, 0, 64]
    config.use_ffn = [True, False, True]
    assert kept_units(config) == {
        "conv": [32] * 7,
        "head": [2, 0, 3],
        "interm": [10, 0, 64],
    }
