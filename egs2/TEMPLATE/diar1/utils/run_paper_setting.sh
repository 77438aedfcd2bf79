#!/usr/bin/env bash
# The paper's setting for a corpus recipe (egs2/{ami,aishell4,alimeeting,meetings3}/diar1/run.sh):
# WavLM Base+ or Large teacher, 80 % and/or 90 % sparsity, WavLM conversion, then the shared
# stages of diar.sh. diar.sh's --prune_from (finetuned, pretrained or both) passes through:
#   utils/run_paper_setting.sh --sparsity "80 90" --prune_from "finetuned pretrained" ...
# prunes in both orders to both targets (the paper's table: one RESULTS.md, exp/*/results.png). Run from the recipe directory: utils/run_paper_setting.sh --test_sets "..."
# --results_title "..." [run.sh options] [diar.sh options]. With diar.sh's --init_from_diarizen
# DIR the released model takes the place of the teacher/pruning setting (exp/<DIR's name>).
set -euo pipefail

test_sets=test      # the recipe's test sets (scored separately)
results_title=""    # corpus name for RESULTS.md
teacher=base_plus   # base_plus | large
sparsity=80         # 80 | 90 | "80 90" (% of the WavLM parameters removed; several: one
                    # pruned model each, diar.sh --sparsities)
wavlm_source=""     # WavLM to start from: a Hugging Face dir (e.g. a clone of
                    # microsoft/wavlm-base-plus) or Microsoft's WavLM-Base+.pt / WavLM-Large.pt;
                    # converted once into ${wavlm_init}
wavlm_init=""       # converted checkpoint (default exp/wavlm/wavlm_${teacher}.pt)
user_distill_args="" # --distill_args of the command line: added after the teacher's own

# Options of this script are taken out; everything else goes to diar.sh (see ./diar.sh --help).
diar_args=()
diarizen=""         # diar.sh's --init_from_diarizen DIR, when given: the released model replaces
                    # the teacher/pruning setting (its own exp dir, no fbank/teacher links)
own_setting=()      # this script's setting options given on the command line
while [ $# -gt 0 ]; do
    case "$1" in
        --teacher|--sparsity|--wavlm_source|--wavlm_init|--test_sets|--results_title)
            [ $# -ge 2 ] || { echo "$0: $1 needs a value" >&2; exit 2; }
            case "$1" in --test_sets|--results_title) ;; *) own_setting+=("$1") ;; esac
            printf -v "${1#--}" '%s' "$2"; shift 2 ;;
        --init_from_diarizen)
            [ $# -ge 2 ] || { echo "$0: $1 needs a value" >&2; exit 2; }
            diarizen=$2; diar_args+=("$1" "$2"); shift 2 ;;
        --distill_args)  # appended to (not replacing) the Large teacher's distillation layers
            [ $# -ge 2 ] || { echo "$0: $1 needs a value" >&2; exit 2; }
            user_distill_args="${user_distill_args} $2"; shift 2 ;;
        *) diar_args+=("$1"); shift ;;
    esac
done
case "${teacher}" in base_plus|large) ;; *) echo "$0: --teacher base_plus|large" >&2; exit 2;;
esac
for target in ${sparsity}; do
    case "${target}" in 80|90) ;; *) echo "$0: --sparsity 80, 90 or \"80 90\"" >&2; exit 2;; esac
done
read -r -a targets <<< "${sparsity}"
[ ${#targets[@]} -gt 0 ] || { echo "$0: --sparsity 80, 90 or \"80 90\"" >&2; exit 2; }
wavlm_init=${wavlm_init:-exp/wavlm/wavlm_${teacher}.pt}

# the first target's config (the s80 and s90 files differ in target_sparsity alone; diar.sh
# sets the others' with --model_conf target_sparsity=...)
prune_config=conf/prune_s${targets[0]}.yaml
distill_args=""
if [ "${teacher}" = large ]; then
    prune_config=conf/prune_large_s${targets[0]}.yaml
    # post-pruning distillation keeps 16 per GPU (distill_post.yaml), as the reference
    distill_args="--model_conf distill_layers=0,8,16,24"
fi
distill_args="${distill_args}${user_distill_args}"

if [ -n "${diarizen}" ]; then
    # a released DiariZen model is already fine-tuned and pruned: none of the teacher, sparsity
    # or WavLM options apply, and its runs go to exp/<model directory name>
    if [ ${#own_setting[@]} -gt 0 ]; then
        echo "$0: ${own_setting[*]} do not apply with --init_from_diarizen (the released" \
            "model is already pruned)" >&2
        exit 2
    fi
    expdir=exp/$(basename "${diarizen%/}")
    results_title="${results_title}, released DiariZen model $(basename "${diarizen%/}")"
else
    # fbank baseline and teacher do not depend on the sparsity: the s80 and s90 runs share
    # them (run them one after the other, not at the same time).
    setting=$(IFS=_; echo "${targets[*]}")
    expdir=exp/${teacher}_s${setting}
    mkdir -p exp/fbank "exp/${teacher}/teacher" "${expdir}"
    [ -e "${expdir}/fbank" ] || ln -s ../fbank "${expdir}/fbank"
    [ -e "${expdir}/teacher" ] || ln -s "../${teacher}/teacher" "${expdir}/teacher"
    results_title="${results_title}, WavLM ${teacher}, $(IFS=/; echo "${targets[*]}") % sparsity"
fi

# WavLM conversion (the teacher's starting point), once, before the stages that need it
if [ ! -f "${wavlm_init}" ] && [ -n "${wavlm_source}" ]; then
    . ./path.sh
    echo "$(date '+%Y-%m-%dT%H:%M:%S') converting ${wavlm_source} -> ${wavlm_init}"
    mkdir -p "$(dirname "${wavlm_init}")"
    python -m espnet_prune.bin.wavlm_convert --input "${wavlm_source}" --output "${wavlm_init}"
fi

./diar.sh \
    --train_set train \
    --valid_set dev \
    --test_sets "${test_sets}" \
    --fbank_config conf/train_fbank.yaml \
    --teacher_config "conf/train_teacher_wavlm_${teacher}.yaml" \
    --prune_config "${prune_config}" \
    --sparsities "${targets[*]}" \
    --distill_config conf/distill_post.yaml \
    --distill_args "${distill_args}" \
    --finetune_config "conf/train_pruned_wavlm_${teacher}.yaml" \
    --inference_config conf/inference.yaml \
    --wavlm_init "${wavlm_init}" \
    --expdir "${expdir}" \
    --results_title "${results_title}" \
    "${diar_args[@]}"
