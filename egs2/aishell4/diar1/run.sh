#!/usr/bin/env bash
# AISHELL-4 far field (first channel of the 8-channel array): fine-tune
# WavLM inside the EEND powerset model, prune it (fine-tune before prune), score on its test set.
# conf/ is egs2/TEMPLATE/diar1/conf (the paper's hyper-parameters, shared by the corpus
# recipes). The paper trains one model on
# AMI + AISHELL-4 + AliMeeting: that is egs2/meetings3/diar1.
set -euo pipefail
# options: --teacher base_plus|large --sparsity 80|90 --wavlm_source DIR_OR_PT [diar.sh options]
utils/run_paper_setting.sh --test_sets "test" --results_title "AISHELL-4 far field" "$@"
