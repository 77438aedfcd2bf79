#!/usr/bin/env bash
# AMI SDM (Array1-01) with the BUT AMI-diarization-setup "only_words" references and UEMs
# → data/{train,dev,test} (train 134 of the 136 listed meetings have SDM audio, dev 18, test 16).
set -euo pipefail
log() { echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${BASH_SOURCE[1]##*/}:${BASH_LINENO[0]}) $*"; }

data=data        # output root: data/${prefix}{train,dev,test}
prefix=          # e.g. "ami_" when several corpora share one data root
download=true    # fetch (resumably) whatever is missing into ${AMI} first
lists=           # meeting lists (default local/ami_splits)

help_message="Usage: $0 [--data DIR] [--prefix PREFIX] [--download true|false] [--lists DIR]"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# the recipe's utils/ (a link to egs2/TEMPLATE/diar1/utils), whatever the working directory
# shellcheck source=../../../TEMPLATE/diar1/utils/parse_options.sh
. "${here}/../utils/parse_options.sh"
if [ $# -ne 0 ]; then echo "${help_message}" >&2; exit 1; fi
. ./db.sh
if [ -z "${AMI:-}" ]; then
    log "Set AMI in db.sh (download directory: amicorpus/ and AMI-diarization-setup/ go there)"
    exit 1
fi
lists=${lists:-${here}/ami_splits}

if "${download}" && [ ! -f "${AMI}/.complete" ]; then
    log "Downloading AMI SDM audio and the AMI-diarization-setup references into ${AMI}"
    python "${here}/download_ami.py" --ami "${AMI}" --lists "${lists}"
    touch "${AMI}/.complete"
fi
log "Preparing AMI data dirs under ${data}"
python "${here}/prepare_ami.py" --ami_audio "${AMI}/amicorpus" \
    --setup "${AMI}/AMI-diarization-setup" --lists "${lists}" --data "${data}" --prefix "${prefix}"
