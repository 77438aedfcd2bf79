"""Dress rehearsal of the paper's recipes: ``./run.sh`` on CPU at miniature scale.

The AMI recipe and the compound meetings3 recipe (AMI + AISHELL-4 + AliMeeting) run stages 1-8
with a Base+ teacher, and the AMI recipe stages 1-6 with a Large one, all with the recipe's own
configs (``conf/``: Base+ / Large teachers and distillation layers, prune_s80 /
prune_large_s80, distill_post, train_pruned_wavlm_*, the WeSpeaker inference config) on the
miniature corpora of ``corpus_fixtures`` (the real on-disk layouts). The WavLM is a random
transformers ``save_pretrained`` directory of the Base+ (or Large) shape that run.sh converts;
the speaker-embedding model is a random WeSpeaker ResNet34 in pyannote's ``pytorch_model.bin``
layout at the path of ``conf/inference.yaml``. The only overrides are run-length knobs on
run.sh's command line (epochs, iterations per epoch, batch size, number of checkpoints
averaged, parallel jobs, speed-measurement length).

The three rehearsals (3.5-6, 5-9 and 7-7.5 min on 2 CPU cores shared with other jobs) are
deselected by default (marker ``rehearsal``; ``pytest -m rehearsal`` runs them, CI does);
the checks of run.sh's option plumbing and of the cost report are part of the default run.
"""

from __future__ import annotations

import json
import shutil
import time

import pytest
import torch
import transformers
import yaml
from corpus_fixtures import (
    AISHELL4_DEV,
    REPO,
    build_aishell4,
    build_alimeeting,
    build_ami,
    run_script,
)

MODELS = ("fbank", "teacher", "pruned")
ONE_STEP = "--num_iters_per_epoch 1 --batch_size 1 --valid_batch_size 1 --num_workers 0"
# run-length knobs only: every model shape and method setting comes from the recipe's conf/
RUN_LENGTH = (
    "--nj", "1",                      # inference jobs
    "--bench_seconds", "1",           # audio per forward of the stage-8 CPU speed measurement
    "--train_args", f"--max_epoch 1 {ONE_STEP} --keep_nbest_models 1",
    "--prune_args", f"--max_epoch 2 {ONE_STEP}",
    "--distill_args", f"--max_epoch 1 {ONE_STEP}",
)
HF_SHAPES = {  # transformers.WavLMConfig of microsoft/wavlm-base-plus and microsoft/wavlm-large
    "base_plus": {},
    "large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                  intermediate_size=4096, do_stable_layer_norm=True, feat_extract_norm="layer",
                  conv_bias=True),
}
WESPEAKER = "downloads/wespeaker-voxceleb-resnet34-LM/pytorch_model.bin"  # conf/inference.yaml


@pytest.fixture
def rehearsal_dir(tmp_path):
    """tmp_path, whose checkpoints (GBs) are deleted afterwards, pass or fail (pytest keeps
    the last three sessions' tmp dirs); logs and results stay."""
    yield tmp_path
    for pattern in ("*.pth", "*.pt", "*.bin", "*.safetensors"):
        for path in tmp_path.rglob(pattern):
            if path.is_file() and not path.is_symlink():
                path.unlink()


def random_hf_wavlm(folder, teacher: str):
    """A random WavLMModel of the real shape, saved like a Hugging Face snapshot."""
    torch.manual_seed(0)
    transformers.WavLMModel(transformers.WavLMConfig(**HF_SHAPES[teacher])).save_pretrained(
        folder
    )
    return folder


def random_wespeaker(path):
    """A random ResNet34 in pyannote's distribution layout (a Lightning checkpoint)."""
    from espnet_prune.infer.wespeaker import WeSpeakerResNet34

    torch.manual_seed(0)
    state = WeSpeakerResNet34().state_dict()  # keys "resnet.*", as pyannote stores them
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state,
                "pyannote.audio": {"architecture": {
                    "module": "pyannote.audio.models.embedding.wespeaker",
                    "class": "WeSpeakerResNet34"}},
                "hyper_parameters": {"sample_rate": 16000, "num_mel_bins": 80}}, path)
    return path


def recipe_work_dir(tmp_path, recipe: str, db: str):
    """A recipe dir of its own (data/, dump/, exp/, RESULTS.md) linked to the real recipe."""
    source = REPO / "egs2" / recipe / "diar1"
    work = tmp_path / recipe
    work.mkdir()
    for name in ("run.sh", "diar.sh", "path.sh", "cmd.sh", "utils", "pyscripts", "conf",
                 "local"):
        (work / name).symlink_to(source / name)
    (work / "db.sh").write_text(db)
    random_wespeaker(work / WESPEAKER)
    return work


def run_recipe(work, *args, timeout=3000):
    start = time.monotonic()
    proc = run_script(work / "run.sh", *args, cwd=work, timeout=timeout)
    output = proc.stdout[-6000:] + proc.stderr[-6000:]
    assert proc.returncode == 0, output
    return proc, time.monotonic() - start


def stage_seconds(expdir) -> dict[int, int]:
    times = {}
    for line in (expdir / "stage_times.tsv").read_text().splitlines():
        stage, seconds = line.split("\t")[:2]
        times[int(stage)] = int(seconds)
    return times


def model_conf(run_dir) -> dict:
    """model_conf of a trainer run, as its config.yaml records it."""
    return yaml.safe_load((run_dir / "config.yaml").read_text())["model_conf"]


def check_outputs(work, expdir, test_sets, teacher_params: float):
    scores = json.loads((expdir / "scores.json").read_text())
    assert set(scores) == set(MODELS)
    for name in MODELS:
        assert set(scores[name]) == set(test_sets)
        for dset in test_sets:
            assert 0.0 <= scores[name][dset]["der"]
    teacher = scores["teacher"][test_sets[0]]
    pruned = scores["pruned"][test_sets[0]]
    # the converted WavLM of the real shape, and a physically smaller pruned one
    assert abs(teacher["params"] - teacher_params) / teacher_params < 0.01
    assert 0 < pruned["params"] < teacher["params"]
    assert 0 < pruned["macs_per_second"] < teacher["macs_per_second"]
    results = (work / "RESULTS.md").read_text()
    for dset in test_sets:
        assert f"{dset} DER" in results
    for stage in range(1, 9):
        assert stage in stage_seconds(expdir)
    return scores, results


def ami_recipe(tmp_path):
    """The AMI recipe on the miniature AMI corpus; (work dir, local/data.sh options)."""
    corpus = build_ami(tmp_path / "corpus")
    work = recipe_work_dir(tmp_path, "ami", f"AMI={corpus}\n")
    lists = corpus / "AMI-diarization-setup" / "lists"
    return work, f"--download false --lists {lists}"


def meetings3_recipe(tmp_path):
    """The compound recipe on miniature AMI, AISHELL-4 and AliMeeting corpora."""
    ami = build_ami(tmp_path / "ami")
    aishell4 = build_aishell4(tmp_path / "aishell4")
    alimeeting = build_alimeeting(tmp_path / "alimeeting")
    (tmp_path / "aishell4_dev.txt").write_text("\n".join(AISHELL4_DEV) + "\n")
    work = recipe_work_dir(tmp_path, "meetings3",
                           f"AMI={ami}\nAISHELL4={aishell4}\nALIMEETING={alimeeting}\n")
    lists = ami / "AMI-diarization-setup" / "lists"
    return work, (f"--download false --nj 1 --ami_opts '--lists {lists}' "
                  f"--aishell4_opts '--dev_list {tmp_path / 'aishell4_dev.txt'}'")


def diar_sh_arguments(tmp_path, recipe: str, *args) -> list[str]:
    """The arguments run.sh (through utils/run_paper_setting.sh) gives diar.sh, by a stub."""
    work = tmp_path / recipe
    work.mkdir(parents=True)
    for name in ("run.sh", "utils", "conf", "path.sh"):
        (work / name).symlink_to(REPO / "egs2" / recipe / "diar1" / name)
    (work / "diar.sh").write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@"\n')
    (work / "diar.sh").chmod(0o755)
    proc = run_script(work / "run.sh", *args, cwd=work)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def option(arguments: list[str], name: str) -> str:
    """The value diar.sh's parse_options.sh keeps: the last one given."""
    return [arguments[i + 1] for i, a in enumerate(arguments) if a == name][-1]


def test_run_sh_options_reach_diar_sh(tmp_path):
    # --distill_args of the command line add to the Large teacher's distillation layers
    large = diar_sh_arguments(tmp_path, "ami", "--teacher", "large", "--distill_args",
                              "--max_epoch 1", "--prune_args", "--max_epoch 2")
    assert option(large, "--distill_args").split() == [
        "--model_conf", "distill_layers=0,8,16,24", "--max_epoch", "1"]
    assert option(large, "--prune_config") == "conf/prune_large_s80.yaml"
    assert option(large, "--finetune_config") == "conf/train_pruned_wavlm_large.yaml"
    assert option(large, "--prune_args") == "--max_epoch 2"
    base = diar_sh_arguments(tmp_path / "b", "ami", "--sparsity", "90")
    assert option(base, "--distill_args").split() == []
    assert option(base, "--prune_config") == "conf/prune_s90.yaml"
    assert option(base, "--expdir") == "exp/base_plus_s90"
    assert option(base, "--results_title") == "AMI SDM (only_words), WavLM base_plus, 90 % sparsity"
    assert (tmp_path / "b" / "ami" / "exp" / "base_plus_s90" / "teacher").is_symlink()
    # the compound recipe: three test sets and their macro average
    compound = diar_sh_arguments(tmp_path / "c", "meetings3")
    assert option(compound, "--test_sets") == "ami_test aishell4_test alimeeting_test"
    assert option(compound, "--macro_average") == "true"


def test_paper_table_setting_reaches_diar_sh(tmp_path):
    """--sparsity "80 90" and --prune_from: one run prunes both orders to both targets."""
    table = diar_sh_arguments(tmp_path, "ami", "--teacher", "large", "--sparsity", "80 90",
                              "--prune_from", "finetuned pretrained")
    assert option(table, "--sparsities") == "80 90"
    assert option(table, "--prune_config") == "conf/prune_large_s80.yaml"
    assert option(table, "--prune_from") == "finetuned pretrained"
    assert option(table, "--expdir") == "exp/large_s80_90"
    assert option(table, "--results_title").endswith("WavLM large, 80/90 % sparsity")
    single = diar_sh_arguments(tmp_path / "s", "ami", "--sparsity", "90")
    assert option(single, "--sparsities") == "90"
    assert option(single, "--expdir") == "exp/base_plus_s90"
    work = tmp_path / "ami"
    proc = run_script(work / "run.sh", "--sparsity", "80 95", cwd=work)
    assert proc.returncode == 2 and '--sparsity 80, 90 or "80 90"' in proc.stderr


def test_released_diarizen_model_replaces_the_paper_setting(tmp_path):
    """--init_from_diarizen: its own exp dir and results title, no fbank/teacher links (the
    released model is already pruned), and the setting options are refused."""
    arguments = diar_sh_arguments(tmp_path, "ami", "--init_from_diarizen",
                                  "/models/diarizen-wavlm-base-s80-md/")
    assert option(arguments, "--init_from_diarizen") == "/models/diarizen-wavlm-base-s80-md/"
    assert option(arguments, "--expdir") == "exp/diarizen-wavlm-base-s80-md"
    title = option(arguments, "--results_title")
    assert title.endswith("released DiariZen model diarizen-wavlm-base-s80-md")
    assert "sparsity" not in title
    assert not (tmp_path / "ami" / "exp").exists()  # no fbank/teacher dirs or links
    work = tmp_path / "ami"
    proc = run_script(work / "run.sh", "--init_from_diarizen", "/models/d", "--sparsity", "90",
                      cwd=work)
    assert proc.returncode == 2 and "--sparsity do not apply" in proc.stderr


@pytest.mark.rehearsal
def test_ami_base_plus_stages_1_to_8(rehearsal_dir):
    work, data_opts = ami_recipe(rehearsal_dir)
    hf = random_hf_wavlm(rehearsal_dir / "wavlm-base-plus", "base_plus")
    _, seconds = run_recipe(work, "--wavlm_source", hf, "--local_data_opts", data_opts,
                            *RUN_LENGTH)
    expdir = work / "exp" / "base_plus_s80"
    check_outputs(work, expdir, ["test"], 94.4e6)
    # the s80 config's target and the Base+ distillation layers
    assert model_conf(expdir / "prune")["target_sparsity"] == 0.8
    for run in ("prune", "prune/post_distill"):
        assert model_conf(expdir / run)["distill_layers"] == [0, 4, 8, 12], run
    print(f"AMI Base+: {seconds:.0f} s; per stage {stage_seconds(expdir)}")


@pytest.mark.rehearsal
def test_meetings3_base_plus_stages_1_to_8_with_macro_average(rehearsal_dir):
    work, data_opts = meetings3_recipe(rehearsal_dir)
    hf = random_hf_wavlm(rehearsal_dir / "wavlm-base-plus", "base_plus")
    _, seconds = run_recipe(work, "--wavlm_source", hf, "--local_data_opts", data_opts,
                            *RUN_LENGTH)
    expdir = work / "exp" / "base_plus_s80"
    test_sets = ["ami_test", "aishell4_test", "alimeeting_test"]
    scores, results = check_outputs(work, expdir, test_sets, 94.4e6)
    macro = json.loads((expdir / "macro_der.json").read_text())
    for name in MODELS:
        expected = sum(scores[name][d]["der"] for d in test_sets) / 3
        assert abs(macro[name]["der"] - expected) < 1e-9
        row = next(line for line in results.splitlines() if line.startswith(f"|{name}|"))
        assert f"|{100 * expected:.2f}|" in row
    assert "|macro DER|macro JER|" in results
    print(f"meetings3 Base+: {seconds:.0f} s; per stage {stage_seconds(expdir)}")


@pytest.mark.rehearsal
def test_ami_large_stages_1_to_6(rehearsal_dir):
    """WavLM Large (~316M parameters): the Large configs (train_teacher_wavlm_large,
    prune_large_s80, distillation layers 0,8,16,24, train_pruned_wavlm_large) and the physical
    prune of a Large-shaped model. The fbank baseline does not depend on the teacher, and
    stages 7-8 (inference.yaml, scoring) are those of Base+: the Base+ rehearsals cover them
    (a CI-time choice: they add about 2 min here).

    Run as a disk-constrained user would: stage by stage, deleting between them the files no
    later stage reads (resume states and epoch files hold the frozen Large teacher: 2.5 GB
    each); that also rehearses ``--stage``. Peak: about 20 GB of disk, 14 GB of memory."""
    work, data_opts = ami_recipe(rehearsal_dir)
    hf = random_hf_wavlm(rehearsal_dir / "wavlm-large", "large")
    expdir = work / "exp" / "large_s80"
    args = ("--teacher", "large", "--models", "teacher pruned", "--wavlm_source", hf,
            "--local_data_opts", data_opts, *RUN_LENGTH)
    seconds = 0.0
    for first, last, done_with in ((1, 3, ["teacher/checkpoint.pth"]),
                                   (4, 4, ["prune/*.pth"]),
                                   (5, 5, ["prune/post_distill/*.pth"]),
                                   (6, 6, [])):
        seconds += run_recipe(work, "--stage", first, "--stop_stage", last, *args)[1]
        for pattern in done_with:
            for path in expdir.glob(pattern):
                if not path.is_symlink():
                    path.unlink()
        if last == 3:
            shutil.rmtree(hf)  # converted into exp/wavlm/wavlm_large.pt
    summary = json.loads((expdir / "prune" / "prune_summary.json").read_text())
    assert abs(summary["teacher_params"] - 316.6e6) / 316.6e6 < 0.01
    assert 0 < summary["pruned_params"] < summary["teacher_params"]
    assert summary["target_sparsity"] == 0.8 and len(summary["kept"]["head"]) == 24
    assert model_conf(expdir / "prune")["target_sparsity"] == 0.8
    for run in ("prune", "prune/post_distill"):
        assert model_conf(expdir / run)["distill_layers"] == [0, 8, 16, 24], run
    assert (expdir / "prune" / "wavlm_pruned.pt").is_file()
    assert (expdir / "pruned" / "valid.loss.ave.pth").exists()
    final = yaml.safe_load((expdir / "pruned" / "config.yaml").read_text())
    assert final["frontend"] == "wavlm_prunable"
    assert final["frontend_conf"]["path"] == "exp/large_s80/prune/wavlm_pruned.pt"
    assert set(stage_seconds(expdir)) == set(range(1, 7))
    print(f"AMI Large: {seconds:.0f} s; per stage {stage_seconds(expdir)}")


def test_estimate_cost_report_arithmetic(tmp_path):
    """estimate_cost --report (the READMEs' full-scale tables): time per epoch =
    (train chunks x step FLOPs + valid chunks x forward FLOPs) / (GPUs x TFLOP/s)."""
    rows = [{"stage": "3_teacher", "flops": 400e9, "forward_flops": 100e9,
             "activation_bytes": 1e9, "params_trainable": 100e6, "params_frozen": 0},
            {"stage": "7_segmentation_window", "forward_flops": 100e9,
             "transient_bytes_per_window": 0.1e9},
            {"stage": "7_wespeaker_window", "forward_flops": 50e9,
             "transient_bytes_per_window": 0.05e9}]
    (tmp_path / "cost.json").write_text(json.dumps({"teacher": "base_plus", "rows": rows}))
    script = REPO / "espnet_prune" / "bin" / "estimate_cost.py"
    proc = run_script(script, "--report", tmp_path / "cost.json", "--conf",
                      REPO / "egs2" / "ami" / "diar1" / "conf", "--hours", "60,8,8",
                      "--gpus", "4", "--tflops", "10")
    assert proc.returncode == 0, proc.stderr
    teacher = next(line for line in proc.stdout.splitlines() if line.startswith("|3_teacher|"))
    # 36k chunks x 400 GFLOP + 3.6k x 100 GFLOP = 14.76 PFLOP / 40 TFLOP/s = 369 s = 6 min;
    # memory: 16 B x 100M + 16 chunks x 1 GB + 1.5 GB = 19 GB; 100 epochs: 10.25 h
    assert teacher == "|3_teacher|400|16|19 GB|6 min|100|10.2 h|"
    inference = next(line for line in proc.stdout.splitlines() if "teacher (1 GPU)" in line)
    # 36k windows x 150 GFLOP / 10 TFLOP/s = 540 s; 32 x 0.1 GB + 1.5 GB
    assert "|150 per window|32 windows|5 GB|" in inference and "|0.1 h (36k windows)|" in inference
