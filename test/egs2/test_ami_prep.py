"""AMI data prep (SDM + BUT only_words references) on a miniature corpus, and the downloader."""

from __future__ import annotations

import importlib.util
import shutil
import sys
import urllib.parse
from pathlib import Path

import pytest
from corpus_fixtures import (
    AMI_MEETINGS,
    DEFAULT_TURNS,
    REPO,
    SECONDS,
    build_ami,
    run_script,
    validate,
)

from espnet_prune.corpus import download
from espnet_prune.corpus.meeting_prep import read_list

RECIPE = REPO / "egs2" / "ami" / "diar1"
LOCAL = RECIPE / "local"


def load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return build_ami(tmp_path_factory.mktemp("ami"))


def run_data_sh(corpus: Path, cwd: Path, *extra):
    (cwd / "db.sh").write_text(f"AMI={corpus}\n")
    return run_script(LOCAL / "data.sh", "--data", cwd / "data", "--download", "false",
                      "--lists", corpus / "AMI-diarization-setup" / "lists", *extra, cwd=cwd)


def test_data_sh_prepares_train_dev_test(corpus, tmp_path):
    result = run_data_sh(corpus, tmp_path)
    assert result.returncode == 0, result.stderr
    data = tmp_path / "data"
    for split, meetings in AMI_MEETINGS.items():
        wavs = dict(line.split() for line in (data / split / "wav.scp").read_text().splitlines())
        assert sorted(wavs) == sorted(meetings)
        # already 16 kHz mono: the corpus file is used in place, not copied
        meeting = meetings[0]
        assert wavs[meeting] == str(corpus / "amicorpus" / meeting / "audio" /
                                    f"{meeting}.Array1-01.wav")
        uem = (data / split / "uem").read_text().split()
        assert uem[:4] == [sorted(meetings)[0], "1", "0.000", f"{SECONDS:.3f}"]
        summary = validate(data / split, tmp_path / "dump" / split)
        assert summary["recordings"] == len(meetings)
        assert summary["speakers_per_recording"] == len({s for *_, s in DEFAULT_TURNS})
    rttm = [line.split() for line in (data / "test" / "rttm").read_text().splitlines()]
    starts = sorted(float(f[3]) for f in rttm if f[1] == "ES2004a")
    assert starts == sorted(a for a, _, _ in DEFAULT_TURNS)


def test_missing_meeting_audio_names_the_file(corpus, tmp_path):
    broken = tmp_path / "ami"
    shutil.copytree(corpus, broken)
    (broken / "amicorpus" / "ES2011a" / "audio" / "ES2011a.Array1-01.wav").unlink()
    result = run_data_sh(broken, tmp_path)
    assert result.returncode != 0
    assert "ES2011a.Array1-01.wav: meeting audio file does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_empty_or_foreign_annotation_names_the_file(corpus, tmp_path):
    broken = tmp_path / "ami"
    shutil.copytree(corpus, broken)
    rttm = broken / "AMI-diarization-setup" / "only_words" / "rttms" / "train" / "EN2001a.rttm"
    rttm.write_text("")
    result = run_data_sh(broken, tmp_path)
    assert result.returncode != 0
    assert "EN2001a.rttm: RTTM file has no SPEAKER segments" in result.stderr
    rttm.write_text("SPEAKER IS1000a 1 0.5 1.0 <NA> <NA> A <NA> <NA>\n")
    result = run_data_sh(broken, tmp_path)
    assert "EN2001a.rttm: expected turns of 'EN2001a' only" in result.stderr


def test_stored_meeting_lists_match_the_but_setup():
    lists = {s: read_list(LOCAL / "ami_splits" / f"{s}.meetings.txt")
             for s in ("train", "dev", "test")}
    assert {s: len(m) for s, m in lists.items()} == {"train": 136, "dev": 18, "test": 16}
    assert not set(lists["train"]) & set(lists["dev"]) | set(lists["train"]) & set(lists["test"])
    no_sdm = read_list(LOCAL / "ami_splits" / "no_sdm_audio.txt")
    assert set(no_sdm) <= set(lists["train"])
    assert len(set(lists["train"]) - set(no_sdm)) == 134  # the paper's AMI train recordings
    assert {"EN2002a", "ES2004a", "IS1009a", "TS3003a"} <= set(lists["test"])


# ------------------------------------------------------------------ downloads


def url(path: Path) -> str:
    return "file://" + urllib.parse.quote(str(path))


class FlakyFetcher(download.UrlFetcher):
    """Serves local files but cuts the first transfer of each file after ``cut`` bytes."""

    def __init__(self, cut: int):
        super().__init__()
        self.cut, self.opened = cut, []

    def open(self, source, offset):
        stream, start = super().open(source, offset)
        self.opened.append((Path(urllib.parse.urlparse(source).path).name, start))
        if sum(name == self.opened[-1][0] for name, _ in self.opened) == 1:
            data = stream.read(self.cut)
            stream.close()
            import io

            return io.BytesIO(data), start
        return stream, start


def test_download_resumes_truncated_transfers_and_names_missing_files(tmp_path):
    server = tmp_path / "server"
    server.mkdir()
    big = server / "a.wav"
    big.write_bytes(bytes(range(256)) * 400)
    (server / "b.rttm").write_text("SPEAKER b 1 0 1 <NA> <NA> x <NA> <NA>\n")
    items = [(url(big), tmp_path / "out" / "a.wav"),
             (url(server / "b.rttm"), tmp_path / "out" / "b.rttm"),
             (url(server / "gone.wav"), tmp_path / "out" / "gone.wav")]
    fetcher = FlakyFetcher(cut=1000)
    problems = download.download_all(items, fetcher, retries=3)
    assert (tmp_path / "out" / "a.wav").read_bytes() == big.read_bytes()
    assert (tmp_path / "out" / "b.rttm").read_text() == (server / "b.rttm").read_text()
    # the second transfer of a.wav resumed where the cut one stopped
    assert ("a.wav", 1000) in fetcher.opened
    assert len(problems) == 1 and problems[0].startswith("missing: ")
    assert str(tmp_path / "out" / "gone.wav") in problems[0]
    assert not (tmp_path / "out" / "gone.wav").exists()

    # a file on disk that is shorter than the source is detected and completed
    out = tmp_path / "out" / "a.wav"
    out.write_bytes(big.read_bytes()[:5000])
    assert download.download_file(url(big), out) == "downloaded"
    assert out.read_bytes() == big.read_bytes()
    assert download.download_file(url(big), out) == "present"


def test_download_reports_files_that_stay_truncated(tmp_path):
    source = tmp_path / "x.wav"
    source.write_bytes(b"\0" * 5000)

    class AlwaysShort(download.UrlFetcher):
        def open(self, src, offset):
            import io

            return io.BytesIO(b"\1" * 10), offset

    problems = download.download_all([(url(source), tmp_path / "o" / "x.wav")], AlwaysShort(),
                                      retries=2)
    assert len(problems) == 1 and problems[0].startswith("truncated: ")
    assert str(tmp_path / "o" / "x.wav") in problems[0]
    assert not (tmp_path / "o" / "x.wav").exists()


def test_download_ami_lists_audio_and_pinned_references(tmp_path):
    mod = load("ami_download_ami", LOCAL / "download_ami.py")
    items = mod.ami_items(tmp_path)
    urls = [u for u, _ in items]
    audio = [u for u in urls if u.endswith(".Array1-01.wav")]
    assert len(audio) == 134 + 18 + 16
    assert f"{mod.AMI_MIRROR}/ES2004a/audio/ES2004a.Array1-01.wav" in audio
    assert not any("IS1003b" in u for u in audio)
    assert f"{mod.SETUP_URL}/only_words/rttms/test/EN2002a.rttm" in urls
    assert f"{mod.SETUP_URL}/uems/dev/IB4001.uem" in urls
    dests = {str(d.relative_to(tmp_path)) for _, d in items}
    assert "amicorpus/TS3003a/audio/TS3003a.Array1-01.wav" in dests
    assert "AMI-diarization-setup/only_words/rttms/train/IS1003b.rttm" in dests


def test_download_ami_cli_fails_naming_missing_files(tmp_path):
    mirror = tmp_path / "mirror"
    (mirror / "ES2004a" / "audio").mkdir(parents=True)
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "train.meetings.txt").write_text("ES2004a\n")
    (lists / "dev.meetings.txt").write_text("")
    (lists / "test.meetings.txt").write_text("")
    (lists / "no_sdm_audio.txt").write_text("")
    result = run_script(LOCAL / "download_ami.py", "--ami", tmp_path / "ami", "--lists", lists,
                        "--mirror", url(mirror), "--setup_url", url(tmp_path / "setup"),
                        "--retries", "1")
    assert result.returncode == 1
    assert "ES2004a.Array1-01.wav" in result.stderr and "missing:" in result.stderr
    assert "ES2004a.rttm" in result.stderr
