"""Download and extract AliMeeting far field (OpenSLR 119): Train_Ali_far, Eval_Ali, Test_Ali.

Resumable; archives missing or truncated at the end are named and the exit status is 1.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from download import fetch_archives  # noqa: E402

from espnet_prune.utils.cli import run_main  # noqa: E402

# the download location OpenSLR 119 points to
OPENSLR = "https://speech-lab-share-data.oss-cn-shanghai.aliyuncs.com/AliMeeting/openlr"
ARCHIVES = ("Train_Ali_far.tar.gz", "Eval_Ali.tar.gz", "Test_Ali.tar.gz")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, required=True, help="download directory (ALIMEETING)")
    parser.add_argument("--url", default=OPENSLR, help="base URL (an OpenSLR mirror)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    problems = fetch_archives([f"{args.url.rstrip('/')}/{name}" for name in ARCHIVES], args.dir)
    for line in problems:
        print("  " + line, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    run_main(main)
