"""``./run.sh --stage 3 --stop_stage 3`` of the AMI recipe starts teacher training.

The WavLM comes from a Hugging Face directory (random weights, WavLM Base+ shape, made here:
no weights can be downloaded) that run.sh converts with ``wavlm_convert``; the data is the
miniature AMI corpus, prepared by stages 1-2 of the same run.sh. The trainer is stopped after
one step by command-line overrides.
"""

from __future__ import annotations

import pytest
import torch
import transformers
from corpus_fixtures import REPO, build_ami, run_script

RECIPE = REPO / "egs2" / "ami" / "diar1"
ONE_STEP = ("--max_epoch 1 --num_iters_per_epoch 1 --batch_size 1 --valid_batch_size 1 "
            "--num_workers 0 --keep_nbest_models 1")


@pytest.mark.slow
def test_run_sh_stage3_starts_teacher_training(tmp_path):
    corpus = build_ami(tmp_path / "ami", seconds=8.0)  # one full 8 s training chunk each
    work = tmp_path / "recipe"
    work.mkdir()
    for name in ("run.sh", "diar.sh", "path.sh", "cmd.sh", "utils", "pyscripts", "conf",
                 "local"):
        (work / name).symlink_to(RECIPE / name)
    (work / "db.sh").write_text(f"AMI={corpus}\n")

    lists = corpus / "AMI-diarization-setup" / "lists"
    prep = run_script(work / "run.sh", "--stage", "1", "--stop_stage", "2",
                      "--local_data_opts", f"--download false --lists {lists}", cwd=work)
    assert prep.returncode == 0, prep.stdout[-3000:] + prep.stderr[-3000:]
    assert (work / "dump" / "train" / "reco2dur").is_file()

    hf_dir = tmp_path / "wavlm-base-plus-random"
    torch.manual_seed(0)
    config = transformers.WavLMConfig()  # Base+ shape: 12 x 768, 12 heads, FFN 3072
    transformers.WavLMModel(config).save_pretrained(hf_dir)

    train = run_script(work / "run.sh", "--stage", "3", "--stop_stage", "3",
                       "--models", "teacher", "--wavlm_source", hf_dir,
                       "--train_args", ONE_STEP, cwd=work)
    output = train.stdout[-4000:] + train.stderr[-4000:]
    assert train.returncode == 0, output

    converted = work / "exp" / "wavlm" / "wavlm_base_plus.pt"
    checkpoint = torch.load(converted, map_location="cpu", weights_only=True)
    assert checkpoint["format"] == "espnet_prune.wavlm"
    hf_weights = transformers.WavLMModel.from_pretrained(hf_dir).state_dict()
    num_hf = sum(v.numel() for k, v in hf_weights.items() if "masked_spec_embed" not in k)
    num_converted = sum(v.numel() for v in checkpoint["state_dict"].values())
    assert abs(num_converted - num_hf) / num_hf < 0.01  # the same ~94M-parameter network

    teacher = work / "exp" / "base_plus_s80" / "teacher"
    config_text = (teacher / "config.yaml").read_text()
    assert "wavlm_prunable" in config_text and str(converted.name) in config_text
    assert (teacher / "train.log").is_file()
    assert list(teacher.glob("*epoch.pth")) or (teacher / "valid.loss.ave.pth").exists()
    # the trainer ran the one epoch on the miniature corpus
    assert "1epoch results" in (teacher / "train.log").read_text()
