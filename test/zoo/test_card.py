"""The model card of a packed model states what a recipient needs: size, sparsity against the
teacher, DER per test set, how to load it, how it was trained, the licence."""

from espnet_prune.zoo.pack import model_card

FILES = {"train_config": "exp/pruned/config.yaml", "model_file": "exp/pruned/model.pth",
         "inference_config": "exp/pruned/inference.yaml"}


def test_card_of_a_pruned_model():
    scores = {"test": {"der": 0.1234, "jer": 0.2, "params": 20_000_000,
                       "macs_per_second": 4.5e9},
              "sample": {"der": 0.05, "jer": None, "params": 20_000_000,
                         "macs_per_second": 4.5e9}}
    teacher = {"test": {"der": 0.11, "params": 100_000_000, "macs_per_second": 20e9}}
    card = model_card("pruned", FILES, scores, teacher, "AMI", "./run.sh --sparsity 80",
                      "cc-by-4.0", ["/models/wespeaker/pytorch_model.bin"], "pruned.zip")
    assert card.startswith("---\nlicense: cc-by-4.0\n")
    assert "- corpus: AMI" in card
    assert "20.000 M parameters, 4.500 GMACs per second" in card
    assert "sparsity: 80.0% of the teacher's WavLM parameters removed (100.000 M)" in card
    assert "|test|12.34|20.00|" in card and "|sample|5.00|-|" in card
    assert 'Diarizer.from_pretrained("pruned.zip")' in card
    assert "```sh\n./run.sh --sparsity 80\n```" in card
    assert "CC-BY-4.0" in card  # the copied WeSpeaker model's licence and attribution


def test_card_of_the_fbank_baseline_has_no_wavlm_size():
    scores = {"test": {"der": 0.3, "jer": 0.4, "params": 0, "macs_per_second": 0.0}}
    card = model_card("fbank", FILES, scores, {}, None, None, "cc-by-4.0", [], "fbank.zip")
    assert "filter bank (no WavLM)" in card and "sparsity" not in card
    assert "|test|30.00|40.00|" in card
