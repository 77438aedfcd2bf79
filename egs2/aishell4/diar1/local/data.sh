#!/usr/bin/env bash
# AISHELL-4 → data/{train,dev,test}: first channel of the 8-channel array at 16 kHz mono,
# TextGrid → RTTM, whole-recording UEMs; dev = 18 sessions held out of train_L/M/S.
# Options are those of local/prepare_aishell4.py (see --help there), e.g.
#   local/data.sh --data data --prefix aishell4_ --nj 4 --download false --dev_list FILE
# --download true (the default here) first fetches and extracts the OpenSLR 111 archives into
# ${AISHELL4} unless ${AISHELL4}/.complete exists.
set -euo pipefail
. ./db.sh
: "${AISHELL4:?Set AISHELL4 in db.sh (directory holding train_L, train_M, train_S, test)}"
python "$(dirname "${BASH_SOURCE[0]}")/prepare_aishell4.py" --corpus "${AISHELL4}" \
    --download true "$@"
