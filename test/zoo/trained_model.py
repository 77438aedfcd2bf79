"""A CI-sized trained model (``diar_train``, 1 epoch, fbank frontend) in an exp dir that holds
the inference.yaml stage 7 stores, made once per test session."""

from __future__ import annotations

from pathlib import Path

import yaml
from diar_fixtures import make_diar_data_dir, run_module

TRAIN_CONFIG = {
    "frontend": "fbank", "frontend_conf": {"n_mels": 40},
    "encoder": "conformer",
    "encoder_conf": {"output_size": 32, "attention_heads": 2, "linear_units": 64,
                     "num_blocks": 1, "cnn_module_kernel": 7},
    "model_conf": {"max_speakers_per_chunk": 3, "max_speakers_per_frame": 2},
    "optim": "adamw", "optim_conf": {"lr": 0.003},
    "batch_size": 4, "max_epoch": 1, "chunk_size": 2.0, "chunk_shift": 1.0,
    "num_workers": 0, "keep_nbest_models": 1, "use_matplotlib": False, "seed": 0,
    "progress_bar": False,
}
# not the library defaults (8 s windows, 0.8 s step): a recipient must get these
INFERENCE_CONFIG = {"window": 2.0, "step": 0.5, "batch_size": 4, "median_filter": 5,
                    "embedding": {"name": "resemblyzer"},
                    "clustering": {"name": "ahc", "threshold": 0.45, "min_cluster_size": 1}}


def train_exp_dir(root: Path) -> Path:
    """``root/recipe/exp/teacher``: config.yaml, valid.loss.ave.pth, inference.yaml."""
    data = make_diar_data_dir(root / "data")
    recipe = root / "recipe"
    recipe.mkdir(parents=True)
    (recipe / "train.yaml").write_text(yaml.safe_dump(TRAIN_CONFIG))
    run_module(["espnet_prune.bin.diar_train", "--config", "train.yaml",
                "--train_data_path_and_name_and_type", f"{data}/wav.scp,speech,sound",
                "--valid_data_path_and_name_and_type", f"{data}/wav.scp,speech,sound",
                "--output_dir", "exp/teacher", "--ngpu", "0"], cwd=recipe)
    exp = recipe / "exp" / "teacher"
    (exp / "inference.yaml").write_text(yaml.safe_dump(INFERENCE_CONFIG))
    return exp
