#!/usr/bin/env bash
# Sparsity acceptance: prune the mini teacher to 80 % and 90 % parameter sparsity and to 80 %
# MACs sparsity with diar_prune (conf/acceptance/prune.yaml), physically prune each student
# (wavlm_prune), distil it again (diar_distill), and print expected vs real sparsity and the
# validation distillation loss of every post-pruning epoch as JSON and a table.
#   local/sparsity_acceptance.sh exp/teacher exp/sparsity_acceptance
# The three runs go in parallel, one thread each (about 25-50 minutes on 2 cores; results in
# espnet_prune/prune/CONVERGENCE.md).
set -euo pipefail
. ./path.sh
teacher_exp=${1:-exp/teacher}
out=${2:-exp/sparsity_acceptance}
train_set=${train_set:-dump/train}
valid_set=${valid_set:-dump/dev}
data_args=(--train_data_path_and_name_and_type "${train_set}/wav.scp,speech,sound"
           --valid_data_path_and_name_and_type "${valid_set}/wav.scp,speech,sound")
run_one() {  # name target sparsity
    local dir="${out}/$1"
    mkdir -p "${dir}"
    OMP_NUM_THREADS=1 python -m espnet_prune.bin.diar_prune --config conf/acceptance/prune.yaml \
        --teacher "${teacher_exp}/valid.loss.ave.pth" --teacher_config "${teacher_exp}/config.yaml" \
        --model_conf target="$2" --model_conf target_sparsity="$3" --output_dir "${dir}" \
        --resume true --progress_bar false "${data_args[@]}" > "${dir}/prune.log" 2>&1
    python -m espnet_prune.bin.wavlm_prune --input "${dir}/wavlm_masked.pt" \
        --output "${dir}/wavlm_pruned_raw.pt" > "${dir}/wavlm_prune.log" 2>&1
    OMP_NUM_THREADS=1 python -m espnet_prune.bin.diar_distill \
        --config conf/acceptance/distill_post.yaml --teacher_wavlm "${dir}/wavlm_teacher.pt" \
        --student_wavlm "${dir}/wavlm_pruned_raw.pt" --output_dir "${dir}/post_distill" \
        --export_dir "${dir}" --resume true --progress_bar false "${data_args[@]}" \
        > "${dir}/distill.log" 2>&1
}
start=${SECONDS}
run_one s80_params params 0.8 &
run_one s90_params params 0.9 &
run_one s80_macs macs 0.8 &
wait
python local/summarize_acceptance.py "${out}" --seconds $((SECONDS - start))
