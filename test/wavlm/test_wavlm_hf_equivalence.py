"""Project model vs transformers' WavLMModel / HubertModel / Wav2Vec2Model (random weights).

Every test starts from a fixed seed of torch's global RNG, crc32 of its own test id (the
parametrised name, e.g. ``test_masked_equals_pruned[base-units0]``): a failure repeats when the
test runs alone. The seed is in the test report (``record_property``) and in failure messages.
"""

import pytest
import torch
import transformers
from wavlm_testutils import randomize_, rel_err

from espnet_prune.wavlm.convert import convert_hf

BASE_PLUS = dict(hidden_size=768, num_attention_heads=12, intermediate_size=3072)
LARGE = dict(hidden_size=1024, num_attention_heads=16, intermediate_size=4096,
             do_stable_layer_norm=True, feat_extract_norm="layer")


# every test here draws from a fixed, reported seed (conftest.py)
pytestmark = pytest.mark.usefixtures("seed")


def _hf_model(cls, cfg_cls, tmp_path, **kw):
    hf = randomize_(cls(cfg_cls(num_hidden_layers=2, **kw))).eval()
    hf.save_pretrained(tmp_path)
    return hf


def _compare(hf, ours, wav, attention_mask=None, lengths=None):
    with torch.inference_mode():
        ref = hf(wav, attention_mask=attention_mask, output_hidden_states=True).hidden_states
        out, frame_lengths = ours.extract_features(wav, lengths)
    assert len(out) == len(ref) == hf.config.num_hidden_layers + 1
    errs = [rel_err(a, b) for a, b in zip(out, ref)]
    assert max(errs) <= 1e-5, (errs, f"seed {torch.initial_seed()}")
    return frame_lengths


@pytest.mark.parametrize("name,kw", [("base_plus", BASE_PLUS), ("large", LARGE)])
def test_wavlm_matches_transformers(tmp_path, name, kw):
    hf = _hf_model(transformers.WavLMModel, transformers.WavLMConfig, tmp_path, **kw)
    ours = convert_hf(str(tmp_path))
    assert ours.config.layer_norm_first == (name == "large")
    _compare(hf, ours, torch.randn(2, 16000 + int(torch.randint(0, 800, ()))))


@pytest.mark.parametrize("cls,cfg_cls", [
    (transformers.HubertModel, transformers.HubertConfig),
    (transformers.Wav2Vec2Model, transformers.Wav2Vec2Config)])
def test_hubert_wav2vec2_match_transformers(tmp_path, cls, cfg_cls):
    hf = _hf_model(cls, cfg_cls, tmp_path)
    ours = convert_hf(str(tmp_path))
    assert ours.encoder.rel_attn_embed is None
    _compare(hf, ours, torch.randn(1, 12000))


def test_padded_batch_matches_transformers(tmp_path):
    hf = _hf_model(transformers.WavLMModel, transformers.WavLMConfig, tmp_path,
                   hidden_size=64, num_attention_heads=4, intermediate_size=96, conv_dim=[32] * 7,
                   num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
    ours = convert_hf(str(tmp_path))
    lengths = torch.tensor([16000, 9000])
    wav = torch.randn(2, 16000)
    wav[1, 9000:] = 0.0
    mask = (torch.arange(16000)[None] < lengths[:, None]).long()
    frame_lengths = _compare(hf, ours, wav, attention_mask=mask, lengths=lengths)
    assert frame_lengths.tolist() == hf._get_feat_extract_output_lengths(lengths).tolist()
