"""Download and extract AliMeeting far field (OpenSLR 119): Train_Ali_far, Eval_Ali, Test_Ali.

Resumable; archives missing or truncated at the end are named and the exit status is 1.
"""

from __future__ import annotations

from espnet_prune.corpus.download import archives_main
from espnet_prune.utils.cli import run_main

# the download location OpenSLR 119 points to
OPENSLR = "https://speech-lab-share-data.oss-cn-shanghai.aliyuncs.com/AliMeeting/openlr"
ARCHIVES = ("Train_Ali_far.tar.gz", "Eval_Ali.tar.gz", "Test_Ali.tar.gz")


def main(argv=None) -> int:
    return archives_main(argv, __doc__.splitlines()[0], "ALIMEETING", OPENSLR, ARCHIVES)


if __name__ == "__main__":
    run_main(main)
