#!/usr/bin/env bash
# AliMeeting far field → data/{train,dev,test} (Train / Eval / Test): first channel of the
# 8-channel array at 16 kHz mono, TextGrid → RTTM, whole-recording UEMs.
set -euo pipefail
log() { echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${BASH_SOURCE[1]##*/}:${BASH_LINENO[0]}) $*"; }

data=data        # output root: data/${prefix}{train,dev,test}
prefix=          # e.g. "alimeeting_" when several corpora share one data root
nj=4             # parallel audio extraction jobs
download=true    # fetch and extract the OpenSLR 119 far-field archives into ${ALIMEETING}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
while [ $# -gt 0 ]; do
    name=${1#--}; name=${name//-/_}
    if [[ $1 != --* ]] || [ $# -lt 2 ] || ! declare -p "${name}" >/dev/null 2>&1; then
        echo "$0: unknown option or missing value: $1" >&2; exit 1
    fi
    printf -v "${name}" '%s' "$2"; shift 2
done
. ./db.sh
if [ -z "${ALIMEETING:-}" ]; then
    log "Set ALIMEETING in db.sh (directory holding Train_Ali_far, Eval_Ali, Test_Ali)"; exit 1
fi

if "${download}" && [ ! -f "${ALIMEETING}/.complete" ]; then
    log "Downloading AliMeeting far field (OpenSLR 119) into ${ALIMEETING}"
    python "${here}/download_alimeeting.py" --dir "${ALIMEETING}"
fi
log "Preparing AliMeeting data dirs under ${data}"
python "${here}/prepare_alimeeting.py" --corpus "${ALIMEETING}" --data "${data}" \
    --prefix "${prefix}" --nj "${nj}"
