"""Masked model (eval, deterministic gates) == physically pruned model, per unit and together.

Every test starts from a fixed seed of torch's global RNG, crc32 of its own test id (the
parametrised name, e.g. ``test_masked_equals_pruned[base-units0]``): a failure repeats when the
test runs alone. The seed is in the test report (``record_property``) and in failure messages.
"""

import warnings

import pytest
import torch
from wavlm_testutils import randomize_, rel_err

from espnet_prune.errors import ConfigError
from espnet_prune.wavlm import PRUNING_UNITS, WavLM, load_wavlm, save_wavlm, wavlm_config
from espnet_prune.wavlm.hardconcrete import HardConcrete

# every test here draws from a fixed, reported seed (conftest.py)
pytestmark = pytest.mark.usefixtures("seed")


def tiny(layout: str) -> WavLM:
    cfg = wavlm_config("tiny")
    if layout == "large":
        cfg.extractor_norm, cfg.layer_norm_first, cfg.conv_bias = "layer", True, True
    return randomize_(WavLM(cfg)).eval()


def set_gates(model: WavLM, gen: torch.Generator, wipe_layer: int = 1) -> None:
    """Random keep/drop decisions: kept units get log_alpha in [0.5, 4] (soft values 0.6-1),
    dropped ones -30.  Layer ``wipe_layer`` loses all heads, all FFN units and its layer gates."""
    for name, gate in model.named_modules():
        if not isinstance(gate, HardConcrete):
            continue
        n = gate.n
        keep = torch.rand(n, generator=gen) < 0.6
        if n > 1 and not keep.any():
            keep[0] = True
        if f"layers.{wipe_layer}." in name and "conv" not in name:
            keep[:] = False
        with torch.no_grad():
            gate.log_alpha.copy_(torch.where(keep, 0.5 + 3.5 * torch.rand(n, generator=gen),
                                             torch.full((n,), -30.0)))


@pytest.mark.parametrize("layout", ["base", "large"])
@pytest.mark.parametrize("units", [[u] for u in PRUNING_UNITS] + [list(PRUNING_UNITS)])
def test_masked_equals_pruned(layout, units, tmp_path, seed):
    gen = torch.Generator().manual_seed(seed)
    model = tiny(layout)
    model.add_pruning_gates(units)
    set_gates(model, gen)
    model.eval()
    wav = torch.randn(2, 8000)
    with torch.inference_mode():
        masked, _ = model.extract_features(wav)
    params, macs = model.num_params(), model.macs_per_second()
    save_wavlm(model, tmp_path / "masked.pt")
    model.prune()
    assert not model.gates() and model.config.pruning_units == []
    if "head" in units or "attlayer" in units:
        assert model.config.kept_heads[1] == [] or not model.config.use_attention[1]
    if "interm" in units or "ffnlayer" in units:
        assert model.config.ffn_dims[1] == 0 or not model.config.use_ffn[1]
    assert model.num_params() == params and model.macs_per_second() == macs
    save_wavlm(model, tmp_path / "pruned.pt")
    with warnings.catch_warnings():  # a layer with nothing left loads without torch's
        warnings.simplefilter("error")  # "zero-element tensors" warning (printed by every run)
        pruned = load_wavlm(tmp_path / "pruned.pt")
    reloaded_masked = load_wavlm(tmp_path / "masked.pt")
    with torch.inference_mode():
        out, _ = pruned.extract_features(wav)
        again, _ = reloaded_masked.extract_features(wav)
    assert len(out) == len(masked) == 4
    errs = [rel_err(a, b) for a, b in zip(out, masked)]
    assert max(errs) <= 1e-5, (errs, f"seed {seed}")
    assert max(rel_err(a, b) for a, b in zip(again, masked)) == 0.0
    if units != ["ffnlayer"] and units != ["attlayer"]:
        assert pruned.num_params() < WavLM(wavlm_config("tiny")).num_params()


def test_pruned_structure_is_smaller_for_real(tmp_path):
    model = tiny("base")
    model.add_pruning_gates(PRUNING_UNITS)
    set_gates(model, torch.Generator().manual_seed(0))
    model.prune()
    numel = sum(p.numel() for p in model.parameters())
    assert numel < sum(p.numel() for p in WavLM(wavlm_config("tiny")).parameters())
    att = model.encoder.layers[0].attention
    if att is not None:
        assert att.q_proj.out_features == att.num_kept_heads * att.head_dim


def test_conv_layer_losing_all_channels_is_a_config_error():
    model = tiny("base")
    model.add_pruning_gates(["conv"])
    with torch.no_grad():
        model.feature_extractor.conv_layers[3].gate.log_alpha.fill_(-30.0)
    with pytest.raises(ConfigError, match="conv layer 3"):
        model.prune()


def test_gates_train_vs_eval_and_gradients():
    gate = HardConcrete(2000, init_keep_prob=0.5)
    gate.train()
    z = gate()
    assert 0.0 <= float(z.min()) and float(z.max()) <= 1.0
    assert (z == 0).any() and (z == 1).any() and ((z > 0) & (z < 1)).any()
    gate.eval()
    assert torch.equal(gate(), gate())
    assert int((gate() != 0).sum()) == round(float(gate.l0_norm()))

    model = tiny("base")
    model.add_pruning_gates()
    model.train()
    hidden, _ = model.extract_features(torch.randn(1, 4000))
    loss = (hidden[-1].pow(2).mean() + model.expected_num_params() * 1e-6
            + model.expected_macs() * 1e-9)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.gate_parameters())
    n_gate = sum(p.numel() for p in model.gate_parameters())
    assert n_gate == 7 * 32 + 3 * 4 + 3 * 64
    assert len(model.main_parameters()) + len(model.gate_parameters()) == len(
        list(model.parameters()))


def test_expected_counts_follow_gates():
    model = tiny("base")
    full_params, full_macs = model.num_params(), model.macs_per_second()
    model.add_pruning_gates(PRUNING_UNITS)
    for g in model.gates():
        with torch.no_grad():
            g.log_alpha.fill_(30.0)
    assert abs(float(model.expected_num_params()) - full_params) / full_params < 1e-4
    assert abs(float(model.expected_macs()) - full_macs) / full_macs < 1e-4
    set_gates(model, torch.Generator().manual_seed(1))
    assert float(model.expected_num_params()) < 0.9 * full_params
    # with confident gates the expectation is the deterministic (= pruned) count
    assert abs(float(model.expected_num_params()) - model.num_params()) / model.num_params() < 0.05


def test_mini_preset_can_reach_the_paper_sparsities():
    """The mini recipe's WavLM must be able to reach 80 % and 90 % parameter sparsity (tiny
    cannot: its un-prunable positional conv and norms are 14 % of it)."""
    for name, reachable in (("mini", True), ("tiny", False)):
        model = WavLM(wavlm_config(name))
        total = model.num_params()
        model.add_pruning_gates(("conv", "head", "interm"))
        with torch.no_grad():
            for log_alpha in model.gate_parameters():
                log_alpha.fill_(-30.0)
            max_sparsity = 1.0 - float(model.expected_num_params()) / total
        assert (max_sparsity > 0.95) is reachable, (name, max_sparsity)


def test_override_config_rederives_per_layer_lists():
    from espnet_prune.wavlm.config import override_config

    more_heads = override_config(wavlm_config("mini"), {"num_heads": 16})
    assert more_heads.kept_heads == [list(range(16))] * 3
    assert WavLM(more_heads).num_params() == WavLM(wavlm_config("mini")).num_params()
    deeper = override_config(wavlm_config("mini"), {"num_layers": 5})
    assert deeper.ffn_dims == [256] * 5 and len(deeper.kept_heads) == 5
    deeper.validate()
    explicit = override_config(wavlm_config("mini"), {"num_heads": 8, "kept_heads": [[0]] * 3})
    assert explicit.kept_heads == [[0]] * 3
