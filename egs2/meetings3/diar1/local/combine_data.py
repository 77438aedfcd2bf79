"""Concatenate Kaldi-style diarization data dirs (wav.scp, rttm, uem) into one.

Recording names must stay unique across the inputs: a clash is an error naming both dirs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from espnet_prune.errors import DataError
from espnet_prune.utils.cli import run_main
from espnet_prune.utils.datadir import read_scp, read_uem, write_uem
from espnet_prune.utils.rttm import read_rttm, write_rttm


def combine(inputs: list[Path], output: Path) -> dict[str, int]:
    wavs: dict[str, str] = {}
    owner: dict[str, Path] = {}
    segments = []
    uem: dict[str, list[tuple[float, float]]] = {}
    for src in inputs:
        for rec, wav in read_scp(src / "wav.scp").items():
            if rec in wavs:
                raise DataError(f"{src / 'wav.scp'}: recording {rec!r} is also in "
                                f"{owner[rec] / 'wav.scp'}")
            wavs[rec], owner[rec] = wav, src
        for turns in read_rttm(src / "rttm").values():
            segments.extend(turns)
        if (src / "uem").is_file():
            uem.update(read_uem(src / "uem"))
    output.mkdir(parents=True, exist_ok=True)
    with open(output / "wav.scp", "w", encoding="utf-8") as fh:
        for rec in sorted(wavs):
            fh.write(f"{rec} {wavs[rec]}\n")
    write_rttm(output / "rttm", segments)
    if uem:
        write_uem(output / "uem", uem)
    return {str(src): sum(owner[r] == src for r in wavs) for src in inputs}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("inputs", type=Path, nargs="+")
    args = parser.parse_args(argv)
    counts = combine(args.inputs, args.output)
    print(f"{args.output}: " + ", ".join(f"{k}: {v}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    run_main(main)
