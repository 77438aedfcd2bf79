"""diar.sh's stage control on a throw-away recipe: stage selection, skipping finished stages,
timing records, and clear errors for bad options (stages 1-2 run for real; they are cheap)."""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from diar_fixtures import make_diar_data_dir

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
    ],
)
def test_bad_options(recipe, args, message):
    proc = run_diar(recipe, *args)
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr
    assert not (recipe / "data").exists()


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
