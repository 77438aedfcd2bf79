#!/usr/bin/env bash
# AISHELL-4 → data/{train,dev,test}: first channel of the 8-channel array at 16 kHz mono,
# TextGrid → RTTM, whole-recording UEMs; dev = 18 sessions held out of train_L/M/S.
set -euo pipefail
log() { echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${BASH_SOURCE[1]##*/}:${BASH_LINENO[0]}) $*"; }

data=data        # output root: data/${prefix}{train,dev,test}
prefix=          # e.g. "aishell4_" when several corpora share one data root
nj=4             # parallel audio extraction jobs
download=true    # fetch and extract the OpenSLR 111 archives into ${AISHELL4} when absent
dev_list=        # sessions of the dev split (default local/aishell4_dev_sessions.txt)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
while [ $# -gt 0 ]; do
    name=${1#--}; name=${name//-/_}
    if [[ $1 != --* ]] || [ $# -lt 2 ] || ! declare -p "${name}" >/dev/null 2>&1; then
        echo "$0: unknown option or missing value: $1" >&2; exit 1
    fi
    printf -v "${name}" '%s' "$2"; shift 2
done
. ./db.sh
if [ -z "${AISHELL4:-}" ]; then
    log "Set AISHELL4 in db.sh (directory holding train_L, train_M, train_S, test)"; exit 1
fi

if "${download}" && [ ! -f "${AISHELL4}/.complete" ]; then
    log "Downloading AISHELL-4 (OpenSLR 111) into ${AISHELL4}"
    python "${here}/download_aishell4.py" --dir "${AISHELL4}"
fi
log "Preparing AISHELL-4 data dirs under ${data}"
python "${here}/prepare_aishell4.py" --corpus "${AISHELL4}" --data "${data}" --prefix "${prefix}" \
    --nj "${nj}" ${dev_list:+--dev_list "${dev_list}"}
