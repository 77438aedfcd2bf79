#!/usr/bin/env bash
# AliMeeting far field → data/{train,dev,test} (Train / Eval / Test): first channel of the
# 8-channel array at 16 kHz mono, TextGrid → RTTM, whole-recording UEMs.
# Options are those of local/prepare_alimeeting.py (see --help there), e.g.
#   local/data.sh --data data --prefix alimeeting_ --nj 4 --download false
# --download true (the default here) first fetches and extracts the OpenSLR 119 far-field
# archives into ${ALIMEETING} unless ${ALIMEETING}/.complete exists.
set -euo pipefail
. ./db.sh
: "${ALIMEETING:?Set ALIMEETING in db.sh (directory holding Train_Ali_far, Eval_Ali, Test_Ali)}"
python "$(dirname "${BASH_SOURCE[0]}")/prepare_alimeeting.py" --corpus "${ALIMEETING}" \
    --download true "$@"
