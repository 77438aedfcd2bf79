#!/usr/bin/env bash
# AMI SDM (Array1-01) with the BUT AMI-diarization-setup "only_words" references: fine-tune
# WavLM inside the EEND powerset model, prune it (fine-tune before prune), score on AMI test.
# The paper trains one model on AMI + AISHELL-4 + AliMeeting: that is egs2/meetings3/diar1.
set -euo pipefail
# options: --teacher base_plus|large --sparsity 80|90 --wavlm_source DIR_OR_PT [diar.sh options]
utils/run_paper_setting.sh --test_sets "test" --results_title "AMI SDM (only_words)" "$@"
