#!/usr/bin/env bash
# The paper's setting (arXiv 2505.24111): one model trained on AMI SDM + AISHELL-4 + AliMeeting
# (far field, first channel), fine-tuned WavLM pruned to 80 % / 90 % sparsity, scored on each
# corpus's test set separately (DER, collar 0) and macro-averaged over the three (stage 8:
# RESULTS.md and exp/<teacher>_s<sparsity>/macro_der.json).
set -euo pipefail
# options: --teacher base_plus|large --sparsity 80|90 --wavlm_source DIR_OR_PT [diar.sh options]
utils/run_paper_setting.sh --test_sets "ami_test aishell4_test alimeeting_test" \
    --results_title "AMI + AISHELL-4 + AliMeeting" --macro_average true "$@"
