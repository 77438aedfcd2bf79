#!/usr/bin/env bash
# The paper's setting (arXiv 2505.24111): one model trained on AMI SDM + AISHELL-4 + AliMeeting
# (far field, first channel), fine-tuned WavLM pruned to 80 % / 90 % sparsity, scored on each
# corpus's test set separately (DER, collar 0) and macro-averaged over the three.
set -euo pipefail
# options: --teacher base_plus|large --sparsity 80|90 --wavlm_source DIR_OR_PT [diar.sh options]
test_sets="ami_test aishell4_test alimeeting_test"
utils/run_paper_setting.sh --test_sets "${test_sets}" \
    --results_title "AMI + AISHELL-4 + AliMeeting" "$@"

teacher=base_plus
sparsity=80
while [ $# -gt 0 ]; do
    case "$1" in
        --teacher) teacher=$2; shift 2 ;;
        --sparsity) sparsity=$2; shift 2 ;;
        *) shift ;;
    esac
done
expdir=exp/${teacher}_s${sparsity}
# macro average over the three test sets (the paper's last column)
if [ -f "${expdir}/scores.json" ]; then
    . ./path.sh
    python local/macro_average.py --scores "${expdir}/scores.json" --test_sets ${test_sets} \
        --output "${expdir}/macro_der.json"
fi
