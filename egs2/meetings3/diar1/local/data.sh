#!/usr/bin/env bash
# AMI SDM + AISHELL-4 + AliMeeting (far field, first channel) → one training and one dev set
# (the paper's compound setting) and the three test sets kept apart:
# data/{train,dev}, data/{ami,aishell4,alimeeting}_{train,dev,test}.
set -euo pipefail
log() { echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${BASH_SOURCE[1]##*/}:${BASH_LINENO[0]}) $*"; }

data=data              # output root
nj=4                   # parallel audio extraction jobs
download=true          # fetch missing corpora into the directories of db.sh
ami_opts=""            # extra options of ../../ami/diar1/local/data.sh
aishell4_opts=""       # extra options of ../../aishell4/diar1/local/data.sh
alimeeting_opts=""     # extra options of ../../alimeeting/diar1/local/data.sh

help_message="Usage: $0 [--data DIR] [--nj N] [--download true|false]
    [--ami_opts OPTS] [--aishell4_opts OPTS] [--alimeeting_opts OPTS]"
# resolved through symlinks: ${egs2} must be the real egs2/ even when local/ is a link
here=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
egs2=$(cd "${here}/../../.." && pwd)
# the recipe's utils/ (a link to egs2/TEMPLATE/diar1/utils), whatever the working directory
# shellcheck source=../../../TEMPLATE/diar1/utils/parse_options.sh
. "${here}/../utils/parse_options.sh"
if [ $# -ne 0 ]; then echo "${help_message}" >&2; exit 1; fi

# shellcheck disable=SC2086
bash "${egs2}/ami/diar1/local/data.sh" --data "${data}" --prefix ami_ \
    --download "${download}" ${ami_opts}
# shellcheck disable=SC2086
bash "${egs2}/aishell4/diar1/local/data.sh" --data "${data}" --prefix aishell4_ \
    --download "${download}" --nj "${nj}" ${aishell4_opts}
# shellcheck disable=SC2086
bash "${egs2}/alimeeting/diar1/local/data.sh" --data "${data}" --prefix alimeeting_ \
    --download "${download}" --nj "${nj}" ${alimeeting_opts}

for split in train dev; do
    log "Combining ${data}/{ami,aishell4,alimeeting}_${split} into ${data}/${split}"
    python "${here}/combine_data.py" --output "${data}/${split}" \
        "${data}/ami_${split}" "${data}/aishell4_${split}" "${data}/alimeeting_${split}"
done
