"""The compound recipe (AMI + AISHELL-4 + AliMeeting): one train/dev set, three test sets."""

from __future__ import annotations

import json

from corpus_fixtures import (
    AISHELL4_DEV,
    AISHELL4_SESSIONS,
    ALIMEETING_SESSIONS,
    AMI_MEETINGS,
    REPO,
    build_aishell4,
    build_alimeeting,
    build_ami,
    run_script,
    validate,
)

RECIPE = REPO / "egs2" / "meetings3" / "diar1"


def recordings(data_dir):
    return sorted(line.split()[0] for line in (data_dir / "wav.scp").read_text().splitlines())


def test_compound_data_prep_and_validation(tmp_path):
    ami = build_ami(tmp_path / "ami")
    aishell4 = build_aishell4(tmp_path / "aishell4")
    alimeeting = build_alimeeting(tmp_path / "alimeeting")
    (tmp_path / "dev.txt").write_text("\n".join(AISHELL4_DEV) + "\n")
    work = tmp_path / "recipe"
    work.mkdir()
    (work / "db.sh").write_text(f"AMI={ami}\nAISHELL4={aishell4}\nALIMEETING={alimeeting}\n")
    result = run_script(
        RECIPE / "local" / "data.sh", "--data", work / "data", "--download", "false", "--nj", "1",
        "--ami_opts", f"--lists {ami / 'AMI-diarization-setup' / 'lists'}",
        "--aishell4_opts", f"--dev_list {tmp_path / 'dev.txt'}", cwd=work,
    )
    assert result.returncode == 0, result.stderr
    data = work / "data"
    a4_train = [s for p, ss in AISHELL4_SESSIONS.items() if p != "test" for s in ss
                if s not in AISHELL4_DEV]
    expected_train = AMI_MEETINGS["train"] + a4_train + ALIMEETING_SESSIONS["Train_Ali_far"]
    expected_dev = (AMI_MEETINGS["dev"] + AISHELL4_DEV
                    + ALIMEETING_SESSIONS["Eval_Ali/Eval_Ali_far"])
    assert recordings(data / "train") == sorted(expected_train)
    assert recordings(data / "dev") == sorted(expected_dev)
    assert recordings(data / "ami_test") == sorted(AMI_MEETINGS["test"])
    assert recordings(data / "aishell4_test") == sorted(AISHELL4_SESSIONS["test"])
    assert recordings(data / "alimeeting_test") == sorted(
        ALIMEETING_SESSIONS["Test_Ali/Test_Ali_far"])
    for dset in ("train", "dev", "ami_test", "aishell4_test", "alimeeting_test"):
        summary = validate(data / dset, work / "dump" / dset)
        assert summary["recordings"] == len(recordings(data / dset))
        assert summary["unlabelled_recordings"] == []
    # every training recording keeps its turns and its UEM
    rttm_recs = {line.split()[1] for line in (data / "train" / "rttm").read_text().splitlines()}
    uem_recs = {line.split()[0] for line in (data / "train" / "uem").read_text().splitlines()}
    assert rttm_recs == uem_recs == set(expected_train)

    # a recording name used by two corpora is refused, naming both data dirs
    clash = run_script(RECIPE / "local" / "combine_data.py", "--output", work / "bad",
                       data / "ami_test", data / "ami_test")
    assert clash.returncode == 2 and "'ES2004a' is also in" in clash.stderr


def test_macro_average_weights_each_test_set_once(tmp_path):
    scores = {"teacher": {"ami_test": {"der": 0.156, "jer": 0.2},
                          "aishell4_test": {"der": 0.118, "jer": 0.1},
                          "alimeeting_test": {"der": 0.177, "jer": 0.3}}}
    path = tmp_path / "scores.json"
    path.write_text(json.dumps(scores))
    result = run_script(RECIPE / "local" / "macro_average.py", "--scores", path, "--test_sets",
                        "ami_test", "aishell4_test", "alimeeting_test", "--output",
                        tmp_path / "macro.json")
    assert result.returncode == 0, result.stderr
    macro = json.loads((tmp_path / "macro.json").read_text())
    assert abs(macro["teacher"]["der"] - 0.150333) < 1e-5  # paper: Base+ teacher macro 15.0
    assert "DER 15.0 %" in result.stdout
    result = run_script(RECIPE / "local" / "macro_average.py", "--scores", path, "--test_sets",
                        "ami_test", "other_test")
    assert result.returncode == 2 and "no score for other_test" in result.stderr
