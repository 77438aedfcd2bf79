"""Download and extract AISHELL-4 (OpenSLR 111): train_L, train_M, train_S and test archives.

Resumable; archives missing or truncated at the end are named and the exit status is 1.
"""

from __future__ import annotations

from espnet_prune.corpus.download import archives_main
from espnet_prune.utils.cli import run_main

OPENSLR = "https://www.openslr.org/resources/111"
ARCHIVES = ("train_L.tar.gz", "train_M.tar.gz", "train_S.tar.gz", "test.tar.gz")


def main(argv=None) -> int:
    return archives_main(argv, __doc__.splitlines()[0], "AISHELL4", OPENSLR, ARCHIVES)


if __name__ == "__main__":
    run_main(main)
