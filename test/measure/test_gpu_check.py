"""gpu_check on the CPU at CI size: every section runs and reports numbers; a section that
fails (a broken recipe config) is an error entry and the rest of the run goes on; the time
budget skips sections; bad options are one-line errors."""

from __future__ import annotations

import json
import shutil

import pytest

from espnet_prune.bin import gpu_check as gpu_check_cli
from espnet_prune.measure import gpu_check
from espnet_prune.utils.cli import run_main

TRAINING = ("teacher_train", "teacher_train_amp", "prune_train", "prune_train_amp")


def run(tmp_path, *options):
    out = tmp_path / "gpu_check.json"
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    argv = ["--device", "cpu", "--size", "ci", "--json", str(out), "--work_dir", str(work),
            *options]
    assert gpu_check_cli.main(argv) == 0
    assert not list(work.iterdir())  # the temporary experiment dirs are gone
    return json.loads(out.read_text())


def test_ci_run_reports_every_section_with_numbers(tmp_path, capsys):
    results = run(tmp_path)
    sections = results["sections"]
    assert set(sections) == set(gpu_check.SECTIONS)
    assert results["config"] == {**results["config"], "device": "cpu", "size": "ci"}

    rows = sections["wavlm_speed"]["rows"]
    assert [(r["precision"], r["batch"]) for r in rows] == list(
        gpu_check.SIZES["ci"]["speed_rows"])
    for row in rows:
        assert "error" not in row, row
        assert row["full_structure"] == "tiny" and row["pruned_structure"] == "tiny_pruned"
        assert row["time_full_s"] > 0 and row["time_pruned_s"] > 0
        assert row["speedup"] == pytest.approx(row["time_full_s"] / row["time_pruned_s"])
        assert row["params_pruned"] < row["params_full"] and row["macs_ratio"] > 1
        assert len(row["full"]["times"]) == len(row["pruned"]["times"]) == 2
        assert row["full"]["precision"] == row["precision"]

    for name in TRAINING:
        entry = sections[name]
        assert entry.get("ran") is True, entry
        # two logged steps: ESPnet's trainer ran num_iters_per_epoch of them
        assert entry["steps"] == entry["steps_asked"] == 2 == len(entry["step_seconds"])
        assert all(t > 0 for t in entry["step_seconds"])
        assert entry["seconds_per_step"] == entry["step_seconds"][1]
        assert entry["use_amp"] is name.endswith("_amp")
        assert entry["amp_active"] is False  # --use_amp does nothing on a CPU
    inference = sections["inference"]
    assert inference["ran"] is True and inference["ngpu"] == 0
    assert inference["audio_seconds"] == pytest.approx(6.0)
    assert inference["rtf"] == pytest.approx(inference["wall_seconds"] / 6.0, rel=1e-3)
    assert inference["recordings"] == 1 and inference["segments"] >= 1

    printed = capsys.readouterr().out
    assert json.loads(printed[printed.index("\n{") + 1:]) == results  # the JSON is printed
    assert "tiny -> tiny_pruned" in printed and "teacher_train_amp:" in printed


@pytest.mark.parametrize("breakage, error", [
    (("encoder: conformer", "encoder: no_such"), "ConfigError: unknown encoder 'no_such'"),
    (("seed: 3407", "seed: 3407\nno_such_option: 1"), "SystemExit: 2"),  # ESPnet's parser
])
def test_a_failing_section_is_an_error_entry_and_the_run_goes_on(tmp_path, breakage, error):
    conf = tmp_path / "conf"
    shutil.copytree(gpu_check.CONF_DIR, conf)
    teacher = conf / "train_teacher_wavlm_base_plus.yaml"
    assert breakage[0] in teacher.read_text()
    teacher.write_text(teacher.read_text().replace(*breakage))
    results = run(tmp_path, "--conf_dir", str(conf))
    sections = results["sections"]
    assert all("speedup" in row for row in sections["wavlm_speed"]["rows"])
    for name in ("teacher_train", "teacher_train_amp"):
        assert sections[name]["error"].startswith(error), sections[name]
        assert "ran" not in sections[name]
    for name in ("prune_train", "prune_train_amp", "inference"):
        assert sections[name]["error"] == "needs teacher_train, which did not run"
    assert "teacher_train: " in gpu_check.summary_table(results)


def test_a_spent_time_budget_skips_the_remaining_sections(tmp_path):
    results = run(tmp_path, "--time_budget", "1e-9")
    assert set(results["sections"]) == set(gpu_check.SECTIONS)
    for entry in results["sections"].values():
        assert entry["skipped"].startswith("time budget of 1e-09 s spent"), entry


@pytest.mark.parametrize("options, message", [
    (["--time_budget", "-1"], "--time_budget must be >= 0"),
    (["--time_budget", "nan"], "--time_budget must be >= 0"),
    (["--conf_dir", "/no/such/conf"], "--conf_dir /no/such/conf: no such directory"),
    (["--device", "cuda"], "--device cuda: PyTorch sees no CUDA device"),
])
def test_bad_options_are_one_line_errors(tmp_path, capsys, monkeypatch, options, message):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    argv = ["--device", "cpu", "--size", "ci", "--json", str(tmp_path / "out.json"), *options]
    with pytest.raises(SystemExit) as exit_info:
        run_main(gpu_check_cli.main, argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.count("\n") == 1, err
    assert not (tmp_path / "out.json").exists()
