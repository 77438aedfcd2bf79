"""Training-time behaviour of the WavLM that eval-mode equivalence tests cannot see: dropout,
LayerDrop and the CNN gradient multiplier (the reference's ``feature_grad_mult``)."""

import pytest
import torch
from wavlm_testutils import randomize_

from espnet_prune.errors import ConfigError
from espnet_prune.wavlm import WavLM, load_wavlm, save_wavlm, wavlm_config
from espnet_prune.wavlm.config import DROPOUT_FIELDS, REFERENCE_DROPOUT, override_config


def model_with(**dropout):
    torch.manual_seed(0)
    return randomize_(WavLM(override_config(wavlm_config("tiny"), dropout)))


def hidden(model, wav, seed):
    torch.manual_seed(seed)
    with torch.no_grad():
        states, _ = model.extract_features(wav)
    return states


WAV = torch.randn(2, 1600, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("field", ["feat_proj_dropout", "attention_dropout",
                                   "activation_dropout", "hidden_dropout"])
def test_each_dropout_acts_in_train_mode_only(field):
    plain = model_with()
    dropped = model_with(**{field: 0.3})
    assert torch.equal(plain.state_dict()["encoder.pos_conv.bias"],
                       dropped.state_dict()["encoder.pos_conv.bias"])
    ref = hidden(plain.train(), WAV, 0)
    out = hidden(dropped.train(), WAV, 0)
    assert not torch.allclose(ref[-1], out[-1])
    # two draws differ: it is random, not a deterministic change of the network
    assert not torch.allclose(hidden(dropped, WAV, 1)[-1], out[-1])
    plain.eval(), dropped.eval()
    assert all(torch.equal(a, b) for a, b in zip(hidden(plain, WAV, 0), hidden(dropped, WAV, 5)))


def test_feature_projection_dropout_zeroes_hidden_zero_entries():
    # hidden[0] = projection -> dropout -> + positional conv: with p = 0.5 the projection output
    # is scaled by 2 where kept, which changes hidden[0] even before any Transformer layer
    plain, dropped = model_with(), model_with(feat_proj_dropout=0.5)
    assert not torch.allclose(hidden(plain.train(), WAV, 0)[0], hidden(dropped.train(), WAV, 0)[0])


def test_layerdrop_repeats_the_skipped_layers_input_and_is_off_in_eval():
    model = model_with(layerdrop=0.5).train()
    plain = model_with().train()
    seen_drop = seen_keep = False
    for seed in range(12):
        states = hidden(model, WAV, seed)
        assert len(states) == model.config.num_layers + 1
        for i in range(1, len(states)):
            if torch.equal(states[i], states[i - 1]):
                seen_drop = True
            else:
                seen_keep = True
    assert seen_drop and seen_keep
    # without dropout, no layer ever repeats its input
    states = hidden(plain, WAV, 0)
    assert not any(torch.equal(states[i], states[i - 1]) for i in range(1, len(states)))
    model.eval()
    for seed in range(4):
        states = hidden(model, WAV, seed)
        assert not any(torch.equal(states[i], states[i - 1]) for i in range(1, len(states)))


def test_set_dropout_updates_config_and_checkpoint(tmp_path):
    model = model_with()
    model.set_dropout(hidden_dropout=0.2, layerdrop=0.1)
    assert model.encoder.layers[0].dropout.p == 0.2 and model.encoder.layerdrop == 0.1
    save_wavlm(model, tmp_path / "w.pt")
    loaded = load_wavlm(tmp_path / "w.pt")
    assert loaded.config.hidden_dropout == 0.2 and loaded.encoder.dropout.p == 0.2
    assert loaded.encoder.layerdrop == 0.1
    with pytest.raises(ConfigError, match="unknown dropout"):
        model.set_dropout(dropout=0.1)
    with pytest.raises(ConfigError, match="attention_dropout"):
        model.set_dropout(attention_dropout=1.5)


def test_paper_presets_carry_the_reference_dropout_and_test_presets_none():
    for name in ("base_plus", "large", "base_plus_s80"):
        config = wavlm_config(name)
        assert {f: getattr(config, f) for f in DROPOUT_FIELDS} == REFERENCE_DROPOUT
    assert REFERENCE_DROPOUT["layerdrop"] == 0.0  # inert in the reference's hidden-state path
    for name in ("tiny", "mini"):
        assert all(getattr(wavlm_config(name), f) == 0.0 for f in DROPOUT_FIELDS)


def conv_grads(scale):
    """Gradients of a distillation-like loss on the conv weights and conv gate log-alphas."""
    torch.manual_seed(0)
    model = randomize_(WavLM(wavlm_config("tiny")))
    model.add_pruning_gates(("conv", "head", "interm"))
    with torch.no_grad():  # gates away from saturation (the init keeps them clamped at 1)
        for gate in model.gates():
            gate.log_alpha.normal_(0.0, 0.5)
    model.train()
    model.cnn_grad_scale = scale
    torch.manual_seed(1)  # same gate samples for both scales
    states, _ = model.extract_features(WAV)
    loss = sum(s.pow(2).mean() for s in states)
    loss.backward()
    convs = model.feature_extractor.conv_layers
    return ([c.gate.log_alpha.grad.clone() for c in convs],
            [c.conv.weight.grad.clone() for c in convs],
            model.feature_projection.projection.weight.grad.clone())


def test_cnn_grad_scale_scales_everything_below_the_cnn_output():
    gates_1, weights_1, proj_1 = conv_grads(1.0)
    gates_01, weights_01, proj_01 = conv_grads(0.1)
    for a, b in zip(gates_1 + weights_1, gates_01 + weights_01):
        assert a.abs().sum() > 0
        torch.testing.assert_close(b, 0.1 * a, rtol=1e-4, atol=1e-9)
    torch.testing.assert_close(proj_01, proj_1)  # above the CNN: untouched


def test_cnn_grad_scale_leaves_the_expected_size_gradient_alone():
    torch.manual_seed(0)
    model = WavLM(wavlm_config("tiny"))
    model.add_pruning_gates(("conv",))
    grads = []
    for scale in (1.0, 0.1):
        model.zero_grad()
        model.cnn_grad_scale = scale
        model.expected_num_params().backward()
        grads.append([c.gate.log_alpha.grad.clone() for c in model.feature_extractor.conv_layers])
    for a, b in zip(*grads):
        assert a.abs().sum() > 0 and torch.equal(a, b)
