#!/usr/bin/env bash
# Simulate the mini_meeting corpus (espeak-ng voices, deterministic) and write the Kaldi-style
# data dirs data/{train,dev,test} plus the real pyannote sample as data/sample.
# Options are passed to local/simulate_meetings.py (see --help there), e.g.
#   local/data.sh --num_train 8 --min_duration 20 --max_duration 30
set -euo pipefail
. ./db.sh
. ./path.sh
python local/simulate_meetings.py --data_dir data --wav_dir "${MINI_MEETING}" "$@"
