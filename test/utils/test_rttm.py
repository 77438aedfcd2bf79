import pytest

from espnet_prune.errors import DataError
from espnet_prune.utils.rttm import RttmSegment, read_rttm, to_annotation, write_rttm


def test_round_trip(tmp_path):
    segs = [RttmSegment("b", 1.5, 2.0, "x"), RttmSegment("a", 0.0, 1.25, "y")]
    write_rttm(tmp_path / "out.rttm", segs)
    back = read_rttm(tmp_path / "out.rttm")
    assert back == {"a": [segs[1]], "b": [segs[0]]}
    assert to_annotation(back["b"], "b").label_duration("x") == pytest.approx(2.0)


def test_ignores_other_types_and_zero_duration(tmp_path):
    path = tmp_path / "r.rttm"
    path.write_text(
        "SPKR-INFO rec 1 <NA> <NA> <NA> unknown A <NA>\n"
        "SPEAKER rec 1 0.5 0 <NA> <NA> A <NA>\n"
        "SPEAKER rec 1 1.0 2.0 <NA> <NA> A <NA> <NA>\n"
    )
    assert read_rttm(path) == {"rec": [RttmSegment("rec", 1.0, 2.0, "A")]}


@pytest.mark.parametrize(
    "content, needle",
    [
        ("SPEAKER rec 1 abc 2.0 <NA> <NA> A <NA>\n", ":1: start time"),
        ("SPEAKER rec 1 0.0 -1 <NA> <NA> A <NA>\n", ":1: duration"),
        ("SPEAKER rec 1 0.0 1.0 <NA>\n", ":1: SPEAKER line needs at least 8 fields"),
        ("\nhello world\n", ":2: expected an RTTM line"),
        ("", "no SPEAKER segments"),
    ],
)
def test_malformed_rttm_names_file_and_line(tmp_path, content, needle):
    path = tmp_path / "bad.rttm"
    path.write_text(content)
    with pytest.raises(DataError) as err:
        read_rttm(path)
    assert str(path) in str(err.value) and needle in str(err.value)


def test_missing_rttm(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_rttm(tmp_path / "nope.rttm")
