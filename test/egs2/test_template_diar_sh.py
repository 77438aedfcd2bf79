"""diar.sh's stage control on a throw-away recipe: stage selection, skipping finished stages,
timing records, and clear errors for bad options (stages 1-2 run for real; they are cheap);
and ``--init_from_diarizen`` on a tiny DiariZen model through stages 3-8."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from diar_fixtures import make_diar_data_dir
from diarizen_fixtures import make_diarizen_dir, wespeaker_checkpoint, write_vbx_files

TEMPLATE = Path(__file__).resolve().parents[2] / "egs2" / "TEMPLATE" / "diar1"


@pytest.fixture
def recipe(tmp_path):
    """egs2/toy/diar1 with the template linked in and a local/data.sh that writes data/."""
    root = tmp_path / "egs2" / "toy" / "diar1"
    (root / "local").mkdir(parents=True)
    for name in ("diar.sh", "path.sh", "cmd.sh", "utils"):
        os.symlink(TEMPLATE / name, root / name)
    source = make_diar_data_dir(tmp_path / "source")
    data_sh = root / "local" / "data.sh"
    data_sh.write_text(textwrap.dedent(f"""\
        #!/usr/bin/env bash
        set -e
        echo "data.sh called with: $*" >> calls.txt
        for s in train dev test; do
            mkdir -p data/$s; cp {source}/wav.scp {source}/rttm data/$s/
        done
        """))
    data_sh.chmod(0o755)
    return root


def run_diar(recipe, *args):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    return subprocess.run(
        ["./diar.sh", "--test_sets", "test", "--python", sys.executable, *args],
        cwd=recipe, capture_output=True, text=True, env=env,
    )


def stage_records(recipe):
    path = recipe / "exp" / "stage_times.tsv"
    return [line.split("\t")[0] for line in path.read_text().splitlines()] if path.exists() else []


def test_stages_1_2_then_skip(recipe):
    proc = run_diar(recipe, "--stop_stage", "2", "--local_data_opts", "--num 3")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (recipe / "calls.txt").read_text() == "data.sh called with: --num 3\n"
    for dset in ("train", "dev", "test"):
        dump = recipe / "dump" / dset
        assert (dump / "reco2dur").exists() and (dump / "uem").exists()
    assert stage_records(recipe) == ["1", "2"]

    # again: nothing to do, nothing recorded, data.sh not called
    proc = run_diar(recipe, "--stop_stage", "2")
    assert proc.returncode == 0, proc.stderr
    assert "Stage 1: skipped" in proc.stdout and "Stage 2: skipped" in proc.stdout
    assert (recipe / "calls.txt").read_text().count("\n") == 1
    assert stage_records(recipe) == ["1", "2"]

    # a new test set is formatted, the finished ones are not redone
    shutil.copytree(recipe / "data" / "test", recipe / "data" / "extra")
    proc = run_diar(recipe, "--stage", "2", "--stop_stage", "2", "--test_sets", "test extra")
    assert proc.returncode == 0, proc.stderr
    assert "data/extra -> dump/extra" in proc.stdout and "data/test ->" not in proc.stdout


def test_invalid_data_stops_in_stage_2(recipe):
    run_diar(recipe, "--stop_stage", "1")
    with open(recipe / "data" / "dev" / "rttm", "a") as fh:
        fh.write("SPEAKER rec9 1 0.0 1.0 <NA> <NA> x <NA> <NA>\n")
    proc = run_diar(recipe, "--stage", "2", "--stop_stage", "2")
    assert proc.returncode != 0
    assert "error: " in proc.stderr and "data/dev/rttm" in proc.stderr and "rec9" in proc.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--stgae", "2"], "unknown option --stgae"),
        (["--models", "fbank wavlm"], "unknown model 'wavlm'"),
        (["--redo", "maybe"], "--redo takes true, false or auto"),
        (["extra_positional"], "unexpected arguments: extra_positional"),
        (["--models", "diarizen"], "model 'diarizen' in --models needs --init_from_diarizen"),
        (["--prune_from", "fine-tuned"], "--prune_from takes finetuned, pretrained or both"),
        (["--prune_from", ""], "--prune_from is empty"),
        (["--sparsities", "80 0.9"], "--sparsities takes whole percentages"),
        (["--sparsities", "80 100"], "--sparsities: 100 is not between 1 and 99"),
        (["--sparsities", "90 090"], "--sparsities names a target twice"),
        (["--pretrain_config", "conf/pretrain.yaml"], "--pretrain_config needs --pretrain_set"),
        (["--models", "teacher teacher_nopretrain"],
         "model teacher_nopretrain needs --pretrain_config"),
    ],
)
def test_bad_options(recipe, args, message):
    proc = run_diar(recipe, *args)
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr
    assert not (recipe / "data").exists()


def test_stage_2_validates_the_unlabelled_pretrain_sets_without_rttm(recipe):
    run_diar(recipe, "--stop_stage", "1")
    for name in ("pretrain", "pretrain_valid"):
        (recipe / "data" / name).mkdir()
        shutil.copy(recipe / "data" / "train" / "wav.scp", recipe / "data" / name / "wav.scp")
    pretrain = ["--pretrain_config", "conf/pretrain.yaml", "--pretrain_set", "pretrain",
                "--pretrain_valid_set", "pretrain_valid"]
    proc = run_diar(recipe, "--stage", "2", "--stop_stage", "2", *pretrain)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for name in ("train", "dev", "test", "pretrain", "pretrain_valid"):
        assert (recipe / "dump" / name / "reco2dur").is_file(), name
    assert not (recipe / "dump" / "pretrain" / "rttm").exists()
    # without a pre-training config the unlabelled sets are not touched
    shutil.rmtree(recipe / "dump" / "pretrain")
    assert run_diar(recipe, "--stage", "2", "--stop_stage", "2").returncode == 0
    assert not (recipe / "dump" / "pretrain").exists()
    # stage 3 pre-trains before the teacher: it needs the pre-training config first
    (recipe / "conf").mkdir()
    (recipe / "conf" / "t.yaml").write_text("frontend: wavlm_prunable\n")
    proc = run_diar(recipe, "--stage", "3", "--stop_stage", "3", "--models", "teacher",
                    "--teacher_config", "conf/t.yaml", "--wavlm_init", "conf/t.yaml", *pretrain)
    assert proc.returncode == 1 and "conf/pretrain.yaml does not exist" in proc.stdout
    assert not (recipe / "exp" / "teacher").exists()


def test_stage_3_needs_its_config(recipe):
    run_diar(recipe, "--stop_stage", "2")
    proc = run_diar(recipe, "--stage", "3", "--stop_stage", "3", "--models", "fbank")
    assert proc.returncode == 2
    assert "--fbank_config is required for stage 3" in proc.stdout
    proc = run_diar(recipe, "--stage", "3", "--stop_stage", "3", "--models", "teacher",
                    "--teacher_config", "/nonexistent.yaml")
    assert proc.returncode == 1 and "/nonexistent.yaml does not exist" in proc.stdout


def test_later_stage_without_outputs_of_earlier_ones(recipe):
    proc = run_diar(recipe, "--stage", "7", "--models", "teacher")
    assert proc.returncode == 1
    assert "exp/teacher/valid.loss.ave.pth does not exist" in proc.stdout


# ------------------------------------------------------------------ --init_from_diarizen
# tiny fine-tuning: one epoch of 2 s chunks (the import's finetune.yaml gives the rest)
DIARIZEN_FINETUNE_ARGS = ("--batch_size 4 --max_epoch 1 --chunk_shift 2.0 --num_workers 0 "
                          "--keep_nbest_models 1 --use_matplotlib false --seed 0")


@pytest.fixture
def diarizen_args(tmp_path):
    """diar.sh options of a tiny released DiariZen model (with VBx files) and a random
    WeSpeaker ResNet34, as a recipe's run.sh would be called (its own models and inference
    config are replaced)."""
    source = make_diarizen_dir(tmp_path / "diarizen-tiny")
    write_vbx_files(source)
    embedding = wespeaker_checkpoint(tmp_path / "wespeaker")
    return ["--init_from_diarizen", str(source), "--diarizen_embedding_model", str(embedding),
            "--diarizen_finetune_args", DIARIZEN_FINETUNE_ARGS,
            "--models", "fbank teacher pruned", "--inference_config", "conf/recipe.yaml",
            "--nj", "1", "--bench_seconds", "1"]


def test_init_from_diarizen_stages_3_to_8_then_nothing_to_do(recipe, diarizen_args):
    proc = run_diar(recipe, *diarizen_args)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    exp = recipe / "exp"
    for name in ("config.yaml", "model.pth", "wavlm.pt", "inference.yaml", "finetune.yaml",
                 "plda.npz"):
        assert (exp / "diarizen" / name).is_file(), name
    assert not any((exp / name).exists() for name in ("fbank", "teacher", "prune", "pruned"))
    assert "Stage 4: skipped (--init_from_diarizen" in out
    assert "Stage 5: skipped (--init_from_diarizen" in out
    assert stage_records(recipe) == ["1", "2", "3", "6", "7", "8", "9"]

    # the fine-tuning started from the import (an untouched buffer is identical) and trained
    imported = torch.load(exp / "diarizen" / "model.pth", weights_only=True)
    tuned = torch.load(exp / "diarizen_finetuned" / "valid.loss.ave.pth", weights_only=True)
    key = "frontend.wavlm.feature_extractor.output_scale"
    assert torch.equal(tuned[key], imported[key])
    assert not torch.equal(tuned["classifier.weight"], imported["classifier.weight"])

    # both diarized with the imported inference.yaml (not the recipe's), both scored
    for name in ("diarizen", "diarizen_finetuned"):
        rttm = exp / name / "decode_inference" / "test" / "rttm"
        assert rttm.read_text().startswith("SPEAKER "), name
        assert (exp / name / "wavlm_stats.json").is_file()
    scores = json.loads((exp / "scores.json").read_text())
    assert list(scores) == ["diarizen", "diarizen_finetuned"]
    for entry in (scores["diarizen"]["test"], scores["diarizen_finetuned"]["test"]):
        assert isinstance(entry["der"], float) and entry["params"] > 0
    assert scores["diarizen"]["test"]["params"] == scores["diarizen_finetuned"]["test"]["params"]
    results = (recipe / "RESULTS.md").read_text()
    assert "|diarizen|" in results and "|diarizen_finetuned|" in results

    # stage 7 stored the inference config it used beside each model; stage 9 packed each
    # model with it and the files it names (PLDA, speaker-embedding checkpoint), renamed into
    # the archive, and a model card with the DER table and the command
    import zipfile

    for name in ("diarizen", "diarizen_finetuned"):
        stored = (exp / name / "inference.yaml").read_text()
        assert stored == (exp / "diarizen" / "inference.yaml").read_text()
        with zipfile.ZipFile(exp / "packed" / f"{name}.zip") as archive:
            names = set(archive.namelist())
            packed_conf = archive.read(f"exp/{name}/inference.yaml").decode()
            card = archive.read("README.md").decode()
        assert {"meta.yaml", "README.md", f"exp/{name}/config.yaml",
                f"exp/{name}/inference.yaml", f"exp/{name}/RESULTS.md"} <= names
        assert any(n.startswith(f"exp/{name}/files/plda_") for n in names), names
        assert any(n.startswith(f"exp/{name}/files/checkpoint_") for n in names), names
        assert "plda: files/plda_" in packed_conf and str(recipe) not in packed_conf
        der = scores[name]["test"]["der"]
        assert f"|test|{100 * der:.2f}|" in card and "./diar.sh" in card

    # again: nothing imported, trained, diarized or scored
    mtimes = {p: p.stat().st_mtime for p in (exp / "diarizen" / "model.pth",
                                             exp / "diarizen_finetuned" / "valid.loss.ave.pth",
                                             exp / "scores.json")}
    proc = run_diar(recipe, *diarizen_args)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    assert "Stage 3: skipped" in out and "Stage 6: skipped" in out and "Stage 8: skipped" in out
    assert "diarizen: packed (exp/packed/diarizen.zip)" in out
    assert stage_records(recipe) == ["1", "2", "3", "6", "7", "8", "9"]
    assert {p: p.stat().st_mtime for p in mtimes} == mtimes


@pytest.mark.parametrize(
    "change, code, message",
    [
        ({"--init_from_diarizen": "/nonexistent/diarizen"}, 1,
         "--init_from_diarizen /nonexistent/diarizen: not a DiariZen model directory"),
        ({"--diarizen_embedding_model": ""}, 2,
         "--init_from_diarizen needs --diarizen_embedding_model"),
        ({"--diarizen_embedding_model": "/nonexistent/wespeaker.bin"}, 1,
         "--diarizen_embedding_model /nonexistent/wespeaker.bin does not exist"),
        ({"--models": "diarizen wavlm"}, 2, "unknown model 'wavlm'"),
    ],
)
def test_init_from_diarizen_errors_before_anything_runs(recipe, diarizen_args, change, code,
                                                        message):
    args = list(diarizen_args)
    for option, value in change.items():
        args[args.index(option) + 1] = value
    proc = run_diar(recipe, *args)
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert message in proc.stdout + proc.stderr
    assert not (recipe / "data").exists() and not (recipe / "exp").exists()


def test_stage_10_prepares_hugging_face_folders_and_prints_the_push(recipe):
    import zipfile

    packed = recipe / "exp" / "packed"
    packed.mkdir(parents=True)
    for name in ("teacher", "pruned"):
        with zipfile.ZipFile(packed / f"{name}.zip", "w") as archive:
            archive.writestr("README.md", f"card of {name}\n")
            archive.writestr(f"exp/{name}/config.yaml", "frontend: fbank\n")
    stage_10 = ["--stage", "10", "--models", "teacher pruned"]

    proc = run_diar(recipe, *stage_10)  # skipped by default: nothing is prepared
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not (recipe / "exp" / "hf_upload").exists()

    proc = run_diar(recipe, *stage_10, "--skip_upload_hf", "false")
    assert proc.returncode == 2 and "--hf_repo USER/NAME is required" in proc.stdout

    proc = run_diar(recipe, *stage_10, "--skip_upload_hf", "false", "--hf_repo", "me/toy")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in ("teacher", "pruned"):
        folder = recipe / "exp" / "hf_upload" / name
        assert (folder / "README.md").read_text() == f"card of {name}\n"
        assert (folder / "exp" / name / "config.yaml").is_file()
    assert ("hf upload me/toy_teacher exp/hf_upload/teacher . --repo-type model && "
            "hf upload me/toy_pruned exp/hf_upload/pruned . --repo-type model") in proc.stdout
    assert stage_records(recipe) == ["10"]
