#!/usr/bin/env bash
# The shared stage script of the diar1 recipes: fine-tune WavLM inside a powerset EEND model,
# prune it (distillation + L0), fine-tune the pruned model, then infer and score.
# A recipe's run.sh sets its options and calls ./diar.sh; see --help.
set -e
set -u
set -o pipefail

log() {
    local fname=${BASH_SOURCE[1]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}
min() { if [ "$1" -lt "$2" ]; then echo "$1"; else echo "$2"; fi; }
SECONDS=0

# General configuration
stage=1              # first stage to run
stop_stage=10        # last stage to run
redo=auto            # true: redo the selected stages even if done; auto: only inference and
                     # scoring are redone, and only when --stage selects them (>= 7)
ngpu=0               # GPUs for training (0 = CPU); > 1 goes through espnet2.bin.launch
num_nodes=1          # nodes for training, each with --ngpu GPUs (> 1: Slurm, CMD_BACKEND=slurm)
nj=4                 # parallel jobs for inference
gpu_inference=false  # run inference on GPU
python=python        # python of the environment (path.sh puts the venv first)

# Data
local_data_opts=""   # options passed to local/data.sh (shell words: quotes are honoured)
datadir=data         # output of stage 1: Kaldi-style dirs
dumpdir=dump         # output of stage 2: validated, formatted copies
expdir=exp           # experiments
train_set=train
valid_set=dev
test_sets="test"
sample_rate=16000

# Models ("fbank teacher pruned" or any subset; "pruned" = every pruned model that
# --prune_from and --sparsities ask for, see "Pruned models" in --help; with --pretrain_config
# also teacher_nopretrain: the teacher fine-tuned from --wavlm_init without the pre-training)
models="fbank teacher pruned"
prune_from=finetuned # what is pruned: finetuned (the teacher's WavLM, the paper's order),
                     # pretrained (the pre-trained WavLM on unlabelled audio, fine-tuned after:
                     # the DPHuBERT order), or both ("finetuned pretrained")
sparsities=""        # target sparsities in % ("80 90"): one pruned model per order and
                     # sparsity; "" = the target of --prune_config
pretrained_wavlm=""  # the pre-trained WavLM that --prune_from pretrained prunes (see --help)
                     # (default: the teacher's starting point, --wavlm_init)
fbank_config=""      # baseline: same EEND model with an 80-dim fbank frontend
teacher_config=""    # WavLM (frontend wavlm_prunable) + Conformer: fine-tuning = the teacher
prune_config=""      # diar_prune: distillation + L0 gates to a target sparsity
distill_config=""    # diar_distill: post-pruning distillation (no regulariser)
finetune_config=""   # diar_train of the pruned WavLM + a fresh Conformer
inference_config=""  # diar_inference (windows, clustering, embedding extractor)
wavlm_init=""        # WavLM checkpoint the teacher starts from (wavlm_convert output)
wavlm_preset=""      # if $wavlm_init does not exist, create it: random init of this preset
wavlm_preset_overrides="{}"  # JSON dict of WavLMConfig fields changed in the preset
pretrain_config=""   # wavlm_pretrain: self-supervised pre-training of --wavlm_init before the
                     # teacher (stage 3); empty: the teacher starts from --wavlm_init itself
pretrain_set=""      # unlabelled data dir of the pre-training (wav.scp; no rttm needed)
pretrain_valid_set=""  # its held-out set (validation loss); default: --valid_set
pretrain_args=""     # extra arguments of wavlm_pretrain
train_args=""        # extra arguments of every diar_train run
prune_args=""        # extra arguments of diar_prune
distill_args=""      # extra arguments of diar_distill
inference_args=""    # extra arguments of diar_inference
collar=0             # scoring collar (total width, pyannote convention)
bench_seconds=8      # audio length of the CPU speed measurement in stage 8
bench_runs=5         # its timed forwards per model (the median counts)
results_title=""     # title of RESULTS.md
macro_average=false  # true: RESULTS.md and ${expdir}/macro_der.json get the macro average
skip_packing=false   # true: no stage 9 (one archive per model in ${expdir}/packed)
skip_upload_hf=true  # false: stage 10 prepares the Hugging Face repo folders (never pushes)
hf_repo=""           # Hugging Face repo of stage 10, USER/NAME; each model goes to NAME_<model>
pack_corpus=""       # training corpus named on the model cards (default: the recipe's folder)
pack_licence=cc-by-4.0  # licence on the model cards (a DiariZen import: the release's licence)
                     # over the test sets (each counted once; the compound recipe's last column)

# Start from a released DiariZen model (already fine-tuned and pruned) instead of stages 3-5
init_from_diarizen=""        # its directory (config.toml, pytorch_model.bin, plda/)
diarizen_embedding_model=""  # local copy of pyannote/wespeaker-voxceleb-resnet34-LM
diarizen_finetune_args=""    # extra arguments of its fine-tuning (after --train_args)

help_message=$(cat << EOF
Usage: $0 --teacher_config <yaml> --prune_config <yaml> ... [options]

Stages (each skipped when its outputs exist; --stage/--stop_stage select a range):
  1 data preparation (local/data.sh)          5 physical pruning + post-pruning distillation
  2 validation / formatting of the data dirs  6 fine-tuning of the pruned model
  3 training: fbank baseline and teacher      7 inference of every model on every test set
  4 pruning (distillation + L0)               8 scoring, exp/scores.json and RESULTS.md
  9 packing: exp/packed/<model>.zip         10 Hugging Face repo folders (off by default)
Killing the script during training and running it again resumes the training.

Options:
  --stage, --stop_stage  range of stages (default ${stage}..${stop_stage})
  --redo                 true|false|auto (default ${redo}): redo finished stages
  --ngpu                 GPUs for training (default ${ngpu}); per node with --num_nodes
  --num_nodes            nodes for training (default ${num_nodes}; > 1 needs CMD_BACKEND=slurm)
  --nj                   parallel inference jobs (default ${nj})
  --gpu_inference        true|false (default ${gpu_inference})
  --train_set, --valid_set, --test_sets  data set names (default ${train_set} ${valid_set} "${test_sets}")
  --models               subset of "fbank teacher pruned" (default "${models}"); with
                         --pretrain_config also teacher_nopretrain: the teacher's config
                         fine-tuning --wavlm_init itself, stage 3's pre-training skipped
                         (what the pre-training gains), in ${expdir}/teacher_nopretrain
  --prune_from           finetuned|pretrained|"finetuned pretrained" (default ${prune_from})
  --sparsities           target sparsities in % (e.g. "80 90"; default: --prune_config's)
  --pretrained_wavlm     WavLM pruned by --prune_from pretrained (default: the teacher's start,
                         stage 3's pre-trained WavLM with --pretrain_config, else --wavlm_init)
  --fbank_config, --teacher_config, --prune_config, --distill_config, --finetune_config,
  --inference_config     configuration files of the stages
  --wavlm_init           WavLM checkpoint of the teacher (made by wavlm_convert)
  --wavlm_preset         create --wavlm_init with a random init of this preset if missing
  --wavlm_preset_overrides  JSON dict of WavLMConfig fields to change in the preset
  --pretrain_config      with it, stage 3 first pre-trains --wavlm_init self-supervised
                         (wavlm_pretrain: masked prediction of k-means targets) into
                         ${expdir}/wavlm_pretrain/wavlm.pt, and the teacher starts from that
  --pretrain_set, --pretrain_valid_set  unlabelled data dirs of the pre-training (wav.scp;
                         validated in stage 2 without an rttm; valid default: --valid_set)
  --pretrain_args        extra arguments of wavlm_pretrain
  --train_args, --prune_args, --distill_args, --inference_args  extra CLI arguments
  --local_data_opts      options of local/data.sh
  --collar               scoring collar in seconds (default ${collar})
  --bench_seconds, --bench_runs  stage 8's CPU speed measurement: seconds of audio per forward
                         (default ${bench_seconds}) and timed forwards per model (default ${bench_runs})
  --macro_average        true|false (default ${macro_average}): macro average over the test sets
  --skip_packing         true|false (default ${skip_packing}): skip stage 9 (diar_pack: config.yaml,
                         model, inference.yaml, RESULTS.md, model card README.md per model)
  --skip_upload_hf       true|false (default ${skip_upload_hf}): stage 10 unpacks each archive into
                         ${expdir}/hf_upload/<model> and prints the command that pushes it
  --hf_repo              USER/NAME of stage 10 (each model: USER/NAME_<model>)
  --pack_corpus, --pack_licence  corpus and licence written on the model cards

Starting from a released DiariZen model (e.g. BUT-FIT/diarizen-wavlm-base-s80-md, downloaded):
  --init_from_diarizen DIR         the model directory (config.toml, pytorch_model.bin, plda/).
      The models are then "diarizen" (as released) and "diarizen_finetuned" (or the one of
      them --models names): stage 3 imports DIR into ${expdir}/diarizen (diarizen_import),
      stages 4-5 are skipped (the model is already pruned), stage 6 fine-tunes the import on
      --train_set with its finetune.yaml (DiariZen's chunking and learning rates) into
      ${expdir}/diarizen_finetuned, stages 7-8 diarize and score both with the imported
      inference.yaml (DiariZen's windows and VBx; edit it to change them; --inference_config
      is not used)
  --diarizen_embedding_model FILE  WeSpeaker ResNet34 of the speaker embeddings (a local copy of
      pyannote/wespeaker-voxceleb-resnet34-LM: directory or pytorch_model.bin); required
  --diarizen_finetune_args         extra diar_train arguments of stage 6 (e.g. "--max_epoch 2")

Pruned models (--models pruned), one per order of --prune_from and sparsity of --sparsities:
  pruned[_pt][_sNN] in ${expdir}/, its pruning run in ${expdir}/prune[_pt][_sNN]/:
  _pt   pruned before fine-tuning: stage 4 distils the pre-trained WavLM (--pretrained_wavlm)
        into its gated copy on the training audio alone (wav.scp; no RTTM or UEM is read),
        stage 5 distils the pruned network again (unlabelled too), stage 6 fine-tunes it for
        diarization with --finetune_config. Without _pt: the teacher's WavLM is pruned.
  _sNN  target sparsity NN % (--model_conf target_sparsity=0.NN on --prune_config); the
        first of --sparsities (or --prune_config's own target) has no suffix, so a run with
        one sparsity keeps the names pruned and pruned_pt.
  E.g. --prune_from "finetuned pretrained" --sparsities "80 90": pruned, pruned_s90,
  pruned_pt, pruned_pt_s90. Stage 8 writes one RESULTS.md row per model and
  ${expdir}/results.png (DER against the WavLM's MACs/s, the two orders in two colours).
EOF
)

log "$0 $*"
run_args=$(printf '%q ' "$0" "$@")
. ./utils/parse_options.sh

if [ $# -ne 0 ]; then
    log "error: unexpected arguments: $*"
    log "${help_message}"
    exit 2
fi
. ./path.sh
. ./cmd.sh

has_model() { [[ " ${models} " == *" $1 "* ]]; }
# the pruned models of --prune_from x --sparsities (see "Pruned models" in --help)
declare -A prune_order=() prune_target=()
pruned_models=""
case "${sparsities}" in *[!0-9\ ]*)
    log "error: --sparsities takes whole percentages between 1 and 99, e.g. \"80 90\""; exit 2 ;;
esac
if [ -n "$(printf '%s\n' ${sparsities} | sed 's/^0*//' | sort | uniq -d)" ]; then
    log "error: --sparsities names a target twice: ${sparsities}"; exit 2
fi
for order in ${prune_from}; do
    case "${order}" in finetuned) base=pruned ;; pretrained) base=pruned_pt ;;
        *) log "error: --prune_from takes finetuned, pretrained or both, not '${order}'"
           exit 2 ;;
    esac
    first=true
    for target in ${sparsities:-default}; do
        name=${base}
        if [ "${target}" != default ]; then
            if [ "$((10#${target}))" -lt 1 ] || [ "$((10#${target}))" -gt 99 ]; then
                log "error: --sparsities: ${target} is not between 1 and 99 (%)"; exit 2
            fi
            target=$((10#${target}))
            ${first} || name=${base}_s${target}
        fi
        if [ -n "${prune_order[${name}]+x}" ]; then
            log "error: --prune_from/--sparsities name ${name} twice"; exit 2
        fi
        prune_order[${name}]=${order}; prune_target[${name}]=${target}
        pruned_models+=" ${name}"
        first=false
    done
done
pruned_models=${pruned_models# }
if [ -z "${pruned_models}" ]; then log "error: --prune_from is empty"; exit 2; fi
diarizen_dir="${expdir}/diarizen"
diarizen_finetuned_dir="${expdir}/diarizen_finetuned"
if [ -n "${init_from_diarizen}" ]; then
    # the recipe's own models (its run.sh names them) give way to the released one
    kept=""
    for name in ${models}; do
        case "${name}" in diarizen|diarizen_finetuned) kept+=" ${name}" ;;
            fbank|teacher|teacher_nopretrain|pruned) ;;
            *) log "error: unknown model '${name}' in --models (diarizen, diarizen_finetuned)"
               exit 2 ;;
        esac
    done
    models=${kept# }
    if [ -z "${models}" ]; then models="diarizen diarizen_finetuned"; fi
    log "--init_from_diarizen ${init_from_diarizen}: models ${models} (fbank, teacher and" \
        "pruned are not trained)"
    if [ -n "${inference_config}" ]; then
        log "inference with ${diarizen_dir}/inference.yaml, not ${inference_config}"
    fi
    inference_config="${diarizen_dir}/inference.yaml"
else
    expanded=""
    for name in ${models}; do
        case "${name}" in fbank|teacher) expanded+=" ${name}" ;;
            pruned) expanded+=" ${pruned_models}" ;;
            teacher_nopretrain)
                if [ -z "${pretrain_config}" ]; then
                    log "error: model teacher_nopretrain needs --pretrain_config (without" \
                        "pre-training the teacher itself starts from --wavlm_init)"
                    exit 2
                fi
                expanded+=" ${name}" ;;
            diarizen|diarizen_finetuned)
                log "error: model '${name}' in --models needs --init_from_diarizen"; exit 2 ;;
            *) log "error: unknown model '${name}' in --models (fbank, teacher, pruned," \
                   "teacher_nopretrain)"
               exit 2 ;;
        esac
    done
    # from here on the models are named one by one (pruned -> pruned pruned_pt_s90 ...)
    models=${expanded# }
fi
# has_pruned [ORDER]: whether a pruned model (of that order) is asked for
has_pruned() {
    local name
    for name in ${models}; do
        if [ -n "${prune_order[${name}]+x}" ] && { [ $# -eq 0 ] \
            || [ "${prune_order[${name}]}" = "$1" ]; }; then return 0; fi
    done
    return 1
}
# the pruned models among --models, in order
selected_pruned() {
    local name
    for name in ${models}; do [ -n "${prune_order[${name}]+x}" ] && echo "${name}"; done
    return 0
}
case "${redo}" in true|false|auto) ;; *) log "error: --redo takes true, false or auto"; exit 2 ;;
esac
case "${macro_average}" in true|false) ;; *)
    log "error: --macro_average takes true or false"; exit 2 ;;
esac

# redo_stage N: whether stage N is redone although its outputs exist
redo_stage() {
    if [ "${redo}" = true ]; then return 0; fi
    if [ "${redo}" = auto ] && [ "$1" -ge 7 ] && [ "${stage}" -ge 7 ]; then return 0; fi
    return 1
}
require_file() {
    local f
    for f in "$@"; do
        if [ ! -e "${f}" ]; then
            log "error: ${f} does not exist (run the earlier stages first)"; exit 1
        fi
    done
}
require_option() {  # name value
    if [ -z "$2" ]; then log "error: --$1 is required for stage ${current_stage}"; exit 2; fi
    require_file "$2"
}
stage_times="${expdir}/stage_times.tsv"
begin_stage() {
    current_stage=$1; stage_start=${SECONDS}
    log "Stage $1: $2"
}
end_stage() {
    mkdir -p "${expdir}"
    printf '%s\t%s\t%s\n' "${current_stage}" "$((SECONDS - stage_start))" "$(date +%s)" \
        >> "${stage_times}"
    log "Stage ${current_stage} done in $((SECONDS - stage_start)) s"
}
in_range() { [ "${stage}" -le "$1" ] && [ "${stop_stage}" -ge "$1" ]; }

# helper scripts live beside this file (recipes link to it)
pyscripts="$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/pyscripts"
fbank_dir="${expdir}/fbank"
teacher_dir="${expdir}/teacher"
teacher_nopretrain_dir="${expdir}/teacher_nopretrain"
prune_dir="${expdir}/prune"  # the pruning run of the model "pruned"
# prune_dir_of NAME: the pruning run of a pruned model (pruned_pt_s90 -> exp/prune_pt_s90)
prune_dir_of() { echo "${expdir}/prune${1#pruned}"; }
model_dir() {
    case "$1" in fbank) echo "${fbank_dir}" ;; teacher) echo "${teacher_dir}" ;;
        diarizen) echo "${diarizen_dir}" ;;
        diarizen_finetuned) echo "${diarizen_finetuned_dir}" ;;
        *) echo "${expdir}/$1" ;; esac
}
pretrain_dir="${expdir}/wavlm_pretrain"
# the pre-trained WavLM that --prune_from pretrained prunes: the one the teacher starts from
# (stage 3's self-supervised pre-training when --pretrain_config is given, else --wavlm_init)
pretrained_wavlm_file() {
    if [ -n "${pretrained_wavlm}" ]; then echo "${pretrained_wavlm}"
    elif [ -n "${pretrain_config}" ]; then echo "${pretrain_dir}/wavlm.pt"
    else echo "${wavlm_init}"; fi
}
# the teacher's starting point --wavlm_init; a random init of --wavlm_preset if it is missing
make_wavlm_init() {
    if [ -z "${wavlm_init}" ]; then
        log "error: --wavlm_init (the WavLM checkpoint of the teacher) is required"
        exit 2
    fi
    if [ ! -f "${wavlm_init}" ]; then
        if [ -z "${wavlm_preset}" ]; then
            log "error: ${wavlm_init} does not exist; convert a WavLM checkpoint with"
            log "  python -m espnet_prune.bin.wavlm_convert, or give --wavlm_preset"
            exit 1
        fi
        log "creating ${wavlm_init}: random init of preset ${wavlm_preset}"
        ${python} "${pyscripts}/make_wavlm_init.py" \
            --preset "${wavlm_preset}" --overrides "${wavlm_preset_overrides}" \
            --output "${wavlm_init}"
    fi
}
# the trainer's last act is averaging the best checkpoints: that file marks a finished run
final_model=valid.loss.ave.pth
if [ -n "${pretrain_config}" ]; then
    if [ -z "${pretrain_set}" ]; then log "error: --pretrain_config needs --pretrain_set"; exit 2; fi
    if [ -z "${pretrain_valid_set}" ]; then pretrain_valid_set=${valid_set}; fi
fi
# model_file NAME: the weights stage 7 diarizes with
model_file() {
    if [ "$1" = diarizen ]; then echo "${diarizen_dir}/model.pth"
    else echo "$(model_dir "$1")/${final_model}"; fi
}
# the import's files (diarizen_import writes finetune.yaml last)
diarizen_files=("${diarizen_dir}/config.yaml" "${diarizen_dir}/model.pth"
                "${diarizen_dir}/wavlm.pt" "${diarizen_dir}/inference.yaml"
                "${diarizen_dir}/finetune.yaml")
diarizen_imported() {
    local f
    for f in "${diarizen_files[@]}"; do [ -f "${f}" ] || return 1; done
}
inference_tag=decode
if [ -n "${inference_config}" ]; then
    inference_tag="decode_$(basename "${inference_config}" | sed -e 's/\.ya\?ml$//')"
fi

# Data arguments of every trainer run: the data dir of whole recordings is named by its
# wav.scp; the task reads rttm/uem from beside it and cuts chunks itself
data_args=(
    --train_data_path_and_name_and_type "${dumpdir}/${train_set}/wav.scp,speech,sound"
    --valid_data_path_and_name_and_type "${dumpdir}/${valid_set}/wav.scp,speech,sound"
)

# run_trainer LOG MODULE ARGS...: one (resumable) ESPnet trainer run, on $ngpu GPUs
run_trainer() {
    local logfile=$1 module=$2
    shift 2
    mkdir -p "$(dirname "${logfile}")"
    log "python -m ${module} ... (log: ${logfile})"
    if [ "${num_nodes}" -gt 1 ]; then
        # ESPnet's Slurm mode: one srun task per node spawns the node's --ngpu DDP workers;
        # all meet through a fresh file on the shared file system
        if [ "${ngpu}" -lt 1 ]; then log "error: --num_nodes > 1 needs --ngpu >= 1"; exit 2; fi
        ${cuda_cmd} --gpu "${ngpu}" --num_nodes "${num_nodes}" "${logfile}" \
            srun --export=ALL ${python} -m "${module}" --resume true "$@" --ngpu "${ngpu}" \
            --multiprocessing_distributed true --dist_launcher slurm --dist_init_method \
            "file://$(cd "$(dirname "${logfile}")" && pwd)/.dist_init_$(date +%s)_$$"
    elif [ "${ngpu}" -gt 1 ]; then
        ${python} -m espnet2.bin.launch --cmd "${cuda_cmd}" --log "${logfile}" \
            --ngpu "${ngpu}" --num_nodes 1 --multiprocessing_distributed true \
            --init_file_prefix "$(dirname "${logfile}")/.dist_init_" -- \
            ${python} -m "${module}" --resume true "$@"
    else
        ${cuda_cmd} --gpu "${ngpu}" "${logfile}" \
            ${python} -m "${module}" --ngpu "${ngpu}" --resume true "$@"
    fi
}

# what the import needs, checked before anything runs
if [ -n "${init_from_diarizen}" ] && in_range 3 && { ! diarizen_imported || redo_stage 3; }; then
    if [ ! -f "${init_from_diarizen}/config.toml" ] \
        || [ ! -f "${init_from_diarizen}/pytorch_model.bin" ]; then
        log "error: --init_from_diarizen ${init_from_diarizen}: not a DiariZen model directory" \
            "(config.toml and pytorch_model.bin expected)"
        exit 1
    fi
    if [ -z "${diarizen_embedding_model}" ]; then
        log "error: --init_from_diarizen needs --diarizen_embedding_model (a local copy of" \
            "pyannote/wespeaker-voxceleb-resnet34-LM)"
        exit 2
    fi
    if [ ! -e "${diarizen_embedding_model}" ]; then
        log "error: --diarizen_embedding_model ${diarizen_embedding_model} does not exist"
        exit 1
    fi
fi

# -------------------------------------------------------------------------------------------
if in_range 1; then
    if [ -f "${datadir}/${train_set}/wav.scp" ] && ! redo_stage 1 && { [ -z "${pretrain_set}" ] \
        || [ -f "${datadir}/${pretrain_set}/wav.scp" ]; }; then
        log "Stage 1: skipped (${datadir}/${train_set}/wav.scp exists)"
    else
        begin_stage 1 "data preparation: local/data.sh ${local_data_opts}"
        # eval: quoted values pass through, e.g. --local_data_opts "--ami_opts '--lists DIR'"
        eval "local/data.sh ${local_data_opts}"
        end_stage
    fi
fi

if in_range 2; then
    begin_stage 2 "validating and formatting data dirs into ${dumpdir}/"
    ran=false
    unlabelled_sets=""
    if [ -n "${pretrain_config}" ]; then unlabelled_sets="${pretrain_set} ${pretrain_valid_set}"; fi
    for dset in "${train_set}" "${valid_set}" ${test_sets} ${unlabelled_sets}; do
        if [ -f "${dumpdir}/${dset}/reco2dur" ] && ! redo_stage 2; then
            continue
        fi
        require_file "${datadir}/${dset}/wav.scp"
        labelled=true
        if [[ " ${unlabelled_sets} " == *" ${dset} "* ]]; then labelled=false; fi
        ${python} -m espnet_prune.bin.validate_data --sample_rate "${sample_rate}" \
            --require_rttm "${labelled}" "${datadir}/${dset}" "${dumpdir}/${dset}"
        ran=true
    done
    if ${ran}; then end_stage; else log "Stage 2: skipped (${dumpdir}/*/reco2dur exist)"; fi
fi

if in_range 3 && [ -n "${init_from_diarizen}" ]; then
    if diarizen_imported && ! redo_stage 3; then
        log "Stage 3: skipped (${diarizen_dir} holds the imported DiariZen model)"
    else
        begin_stage 3 "importing the DiariZen model ${init_from_diarizen} into ${diarizen_dir}"
        ${train_cmd} "${diarizen_dir}/import.log" ${python} -m espnet_prune.bin.diarizen_import \
            --model_dir "${init_from_diarizen}" --output_dir "${diarizen_dir}" \
            --embedding_model "${diarizen_embedding_model}"
        require_file "${diarizen_files[@]}"
        end_stage
    fi
elif in_range 3; then
    begin_stage 3 "training: $(for m in fbank teacher teacher_nopretrain; do
        has_model $m && printf '%s ' $m; done)"
    ran=false
    if has_model fbank; then
        if [ -f "${fbank_dir}/${final_model}" ] && ! redo_stage 3; then
            log "fbank baseline: done (${fbank_dir}/${final_model})"
        else
            require_option fbank_config "${fbank_config}"
            # shellcheck disable=SC2086
            run_trainer "${fbank_dir}/train.log" espnet_prune.bin.diar_train \
                --config "${fbank_config}" --output_dir "${fbank_dir}" "${data_args[@]}" \
                ${train_args}
            ran=true
        fi
    fi
    if has_model teacher || has_pruned; then
        if [ -f "${teacher_dir}/${final_model}" ] && ! redo_stage 3; then
            log "teacher: done (${teacher_dir}/${final_model})"
        else
            require_option teacher_config "${teacher_config}"
            make_wavlm_init
            teacher_init=${wavlm_init}
            if [ -n "${pretrain_config}" ]; then
                # self-supervised pre-training of the WavLM on unlabelled audio (resumable;
                # wavlm.pt is its last output); the teacher fine-tunes the result
                teacher_init="${pretrain_dir}/wavlm.pt"
                if [ -f "${teacher_init}" ] && ! redo_stage 3; then
                    log "WavLM pre-training: done (${teacher_init})"
                else
                    require_option pretrain_config "${pretrain_config}"
                    require_file "${dumpdir}/${pretrain_set}/wav.scp" \
                        "${dumpdir}/${pretrain_valid_set}/wav.scp"
                    # shellcheck disable=SC2086
                    run_trainer "${pretrain_dir}/train.log" espnet_prune.bin.wavlm_pretrain \
                        --config "${pretrain_config}" --output_dir "${pretrain_dir}" \
                        --init_wavlm "${wavlm_init}" \
                        --train_data_path_and_name_and_type \
                        "${dumpdir}/${pretrain_set}/wav.scp,speech,sound" \
                        --valid_data_path_and_name_and_type \
                        "${dumpdir}/${pretrain_valid_set}/wav.scp,speech,sound" \
                        ${pretrain_args}
                    require_file "${teacher_init}"
                fi
            fi
            # shellcheck disable=SC2086
            run_trainer "${teacher_dir}/train.log" espnet_prune.bin.diar_train \
                --config "${teacher_config}" --output_dir "${teacher_dir}" "${data_args[@]}" \
                --frontend_conf path="${teacher_init}" ${train_args}
            ran=true
        fi
    fi
    if has_model teacher_nopretrain; then
        if [ -f "${teacher_nopretrain_dir}/${final_model}" ] && ! redo_stage 3; then
            log "teacher without pre-training: done (${teacher_nopretrain_dir}/${final_model})"
        else
            require_option teacher_config "${teacher_config}"
            make_wavlm_init
            # shellcheck disable=SC2086
            run_trainer "${teacher_nopretrain_dir}/train.log" espnet_prune.bin.diar_train \
                --config "${teacher_config}" --output_dir "${teacher_nopretrain_dir}" \
                "${data_args[@]}" --frontend_conf path="${wavlm_init}" ${train_args}
            ran=true
        fi
    fi
    if ${ran}; then end_stage; fi
fi

if [ -n "${init_from_diarizen}" ]; then
    for n in 4 5; do
        if in_range "${n}"; then
            log "Stage ${n}: skipped (--init_from_diarizen: the released model is already pruned)"
        fi
    done
fi

# order_args_of / target_args_of NAME: the options of diar_prune and diar_distill that the
# pruned model's order (no labels before fine-tuning) and sparsity set
order_args_of() {
    if [ "${prune_order[$1]}" = pretrained ]; then echo "--unlabelled_data true"; fi
}
target_args_of() {
    local target=${prune_target[$1]}
    if [ "${target}" != default ]; then
        echo "--model_conf target_sparsity=$(awk -v t="${target}" 'BEGIN { print t / 100 }')"
    fi
}

if in_range 4 && has_pruned; then
    ran=false
    for name in $(selected_pruned); do
        pdir=$(prune_dir_of "${name}")
        if [ -f "${pdir}/wavlm_masked.pt" ] && ! redo_stage 4; then
            log "Stage 4: skipped (${name}: ${pdir}/wavlm_masked.pt exists)"; continue
        fi
        ${ran} || begin_stage 4 "pruning (distillation + L0): $(selected_pruned | xargs)"
        ran=true
        require_option prune_config "${prune_config}"
        if [ "${prune_order[${name}]}" = pretrained ]; then
            log "${name}: pruning the pre-trained WavLM $(pretrained_wavlm_file) on unlabelled" \
                "audio"
            require_file "$(pretrained_wavlm_file)"
            teacher_args=(--teacher_wavlm "$(pretrained_wavlm_file)")
        else
            log "${name}: pruning the teacher's WavLM"
            require_file "${teacher_dir}/${final_model}" "${teacher_dir}/config.yaml"
            teacher_args=(--teacher "${teacher_dir}/${final_model}"
                          --teacher_config "${teacher_dir}/config.yaml")
        fi
        # shellcheck disable=SC2086,SC2046
        run_trainer "${pdir}/train.log" espnet_prune.bin.diar_prune \
            --config "${prune_config}" "${teacher_args[@]}" --output_dir "${pdir}" \
            "${data_args[@]}" $(order_args_of "${name}") $(target_args_of "${name}") \
            ${prune_args}
    done
    if ${ran}; then end_stage; fi
fi

if in_range 5 && has_pruned; then
    ran=false
    for name in $(selected_pruned); do
        pdir=$(prune_dir_of "${name}")
        if [ -f "${pdir}/wavlm_pruned.pt" ] && ! redo_stage 5; then
            log "Stage 5: skipped (${name}: ${pdir}/wavlm_pruned.pt exists)"; continue
        fi
        ${ran} || begin_stage 5 \
            "physical pruning and post-pruning distillation: $(selected_pruned | xargs)"
        ran=true
        require_option distill_config "${distill_config}"
        require_file "${pdir}/wavlm_masked.pt" "${pdir}/wavlm_teacher.pt"
        if [ ! -f "${pdir}/wavlm_pruned_raw.pt" ] || redo_stage 5; then
            ${train_cmd} "${pdir}/wavlm_prune.log" ${python} -m espnet_prune.bin.wavlm_prune \
                --input "${pdir}/wavlm_masked.pt" --output "${pdir}/wavlm_pruned_raw.pt"
        fi
        # shellcheck disable=SC2086,SC2046
        run_trainer "${pdir}/post_distill/train.log" espnet_prune.bin.diar_distill \
            --config "${distill_config}" --teacher_wavlm "${pdir}/wavlm_teacher.pt" \
            --student_wavlm "${pdir}/wavlm_pruned_raw.pt" --output_dir "${pdir}/post_distill" \
            --export_dir "${pdir}" "${data_args[@]}" $(order_args_of "${name}") \
            ${distill_args}
        require_file "${pdir}/wavlm_pruned.pt"
    done
    if ${ran}; then end_stage; fi
fi

if in_range 6 && has_pruned; then
    ran=false
    for name in $(selected_pruned); do
        pdir=$(prune_dir_of "${name}")
        mdir=$(model_dir "${name}")
        if [ -f "${mdir}/${final_model}" ] && ! redo_stage 6; then
            log "Stage 6: skipped (${name}: ${mdir}/${final_model} exists)"; continue
        fi
        ${ran} || begin_stage 6 "fine-tuning the pruned models: $(selected_pruned | xargs)"
        ran=true
        require_option finetune_config "${finetune_config}"
        require_file "${pdir}/wavlm_pruned.pt"
        # shellcheck disable=SC2086
        run_trainer "${mdir}/train.log" espnet_prune.bin.diar_train \
            --config "${finetune_config}" --output_dir "${mdir}" "${data_args[@]}" \
            --frontend_conf path="${pdir}/wavlm_pruned.pt" ${train_args}
    done
    if ${ran}; then end_stage; fi
fi

if in_range 6 && has_model diarizen_finetuned; then
    if [ -f "${diarizen_finetuned_dir}/${final_model}" ] && ! redo_stage 6; then
        log "Stage 6: skipped (${diarizen_finetuned_dir}/${final_model} exists)"
    else
        begin_stage 6 "fine-tuning the imported DiariZen model"
        require_file "${diarizen_dir}/finetune.yaml" "${diarizen_dir}/model.pth"
        # shellcheck disable=SC2086
        run_trainer "${diarizen_finetuned_dir}/train.log" espnet_prune.bin.diar_train \
            --config "${diarizen_dir}/finetune.yaml" --init_param "${diarizen_dir}/model.pth" \
            --output_dir "${diarizen_finetuned_dir}" "${data_args[@]}" ${train_args} \
            ${diarizen_finetune_args}
        end_stage
    fi
fi

if in_range 7; then
    begin_stage 7 "inference: models (${models}) x test sets (${test_sets})"
    ran=false
    _ngpu=0
    if ${gpu_inference}; then _ngpu=1; fi
    for name in ${models}; do
        mdir=$(model_dir "${name}")
        mfile=$(model_file "${name}")
        # the exp dir carries the inference settings it is scored with: diar_inference and
        # Diarizer.from_pretrained default to it, diar_pack packs it
        # (copied only when it differs: its time stamp tells stage 9 to repack)
        if [ -n "${inference_config}" ] && [ -d "${mdir}" ] \
            && ! cmp -s "${inference_config}" "${mdir}/inference.yaml"; then
            cp "${inference_config}" "${mdir}/inference.yaml"
        fi
        for dset in ${test_sets}; do
            out="${mdir}/${inference_tag}/${dset}"
            if [ -f "${out}/rttm" ] && [ "${out}/rttm" -nt "${mfile}" ] \
                && ! redo_stage 7; then
                log "${name} on ${dset}: done (${out}/rttm)"
                continue
            fi
            require_file "${mfile}" "${dumpdir}/${dset}/wav.scp"
            rm -rf "${out}"
            mkdir -p "${out}/logdir"
            num_recs=$(wc -l < "${dumpdir}/${dset}/wav.scp")
            _nj=$(min "${nj}" "${num_recs}")
            # split wav.scp round-robin into $_nj parts
            awk -v nj="${_nj}" -v dir="${out}/logdir" \
                '{ print > (dir "/wav." ((NR - 1) % nj + 1) ".scp") }' \
                "${dumpdir}/${dset}/wav.scp"
            inference_config_args=()
            if [ -n "${inference_config}" ]; then
                inference_config_args=(--config "${inference_config}")
            fi
            log "${name} on ${dset}: ${_nj} job(s), log ${out}/logdir/inference.*.log"
            # shellcheck disable=SC2086
            ${decode_cmd} --gpu "${_ngpu}" JOB=1:"${_nj}" "${out}/logdir/inference.JOB.log" \
                ${python} -m espnet_prune.bin.diar_inference \
                    --model_file "${mfile}" --train_config "${mdir}/config.yaml" \
                    --wav_scp "${out}/logdir/wav.JOB.scp" --output_dir "${out}/logdir/output.JOB" \
                    --ngpu "${_ngpu}" "${inference_config_args[@]}" ${inference_args}
            mkdir -p "${out}/rttm_per_recording"
            for n in $(seq "${_nj}"); do
                cp "${out}"/logdir/output."${n}"/rttm_per_recording/*.rttm \
                    "${out}/rttm_per_recording/" 2>/dev/null || true
            done
            for n in $(seq "${_nj}"); do cat "${out}/logdir/output.${n}/rttm"; done \
                > "${out}/rttm.tmp"
            mv "${out}/rttm.tmp" "${out}/rttm"
            ran=true
        done
    done
    if ${ran}; then end_stage; fi
fi

if in_range 8; then
    # stale FILE INPUT...: FILE is missing, older than an input, or the stage is redone
    stale() {
        local target=$1 input
        shift
        if [ ! -f "${target}" ] || redo_stage 8; then return 0; fi
        for input in "$@"; do [ "${input}" -nt "${target}" ] && return 0; done
        return 1
    }
    # the WavLM whose size and speed a model reports (the fbank baseline has none)
    wavlm_of() {
        case "$1" in
            teacher) if [ -f "${prune_dir}/wavlm_teacher.pt" ]; then
                         echo "${prune_dir}/wavlm_teacher.pt"; else echo "${wavlm_init}"; fi ;;
            # fine-tuning changes no structure: the size and speed of its starting point
            teacher_nopretrain) echo "${wavlm_init}" ;;
            # fine-tuning changes no structure, so both report the released WavLM's size
            diarizen|diarizen_finetuned) echo "${diarizen_dir}/wavlm.pt" ;;
            *) echo "$(prune_dir_of "$1")/wavlm_pruned.pt" ;;
        esac
    }
    collected=()
    stage_started=false
    start_stage_8() {
        if ! ${stage_started}; then
            begin_stage 8 "scoring -> ${expdir}/scores.json, RESULTS.md"; stage_started=true
        fi
    }
    for name in ${models}; do
        mdir=$(model_dir "${name}")
        for dset in ${test_sets}; do
            out="${mdir}/${inference_tag}/${dset}"
            require_file "${out}/rttm" "${dumpdir}/${dset}/rttm" "${dumpdir}/${dset}/uem"
            collected+=("${out}/score.json")
            stale "${out}/score.json" "${out}/rttm" || continue
            start_stage_8
            ${python} -m espnet_prune.bin.diar_score --ref "${dumpdir}/${dset}/rttm" \
                --hyp "${out}/rttm" --uem "${dumpdir}/${dset}/uem" --collar "${collar}" \
                --json "${out}/score.json" | tee "${out}/score.txt"
        done
        [ "${name}" = fbank ] && continue
        ckpt=$(wavlm_of "${name}")
        require_file "${ckpt}"
        collected+=("${mdir}/wavlm_stats.json" "${mdir}/wavlm_bench.json")
        if stale "${mdir}/wavlm_stats.json" "${ckpt}"; then
            start_stage_8
            ${python} -m espnet_prune.bin.wavlm_stats "${ckpt}" > "${mdir}/wavlm_stats.json"
        fi
        if stale "${mdir}/wavlm_bench.json" "${ckpt}"; then
            start_stage_8
            ${python} -m espnet_prune.bin.wavlm_bench --checkpoint "${ckpt}" --threads 1 \
                --seconds "${bench_seconds}" --batch_size 4 --runs "${bench_runs}" \
                --json "${mdir}/wavlm_bench.json"
        fi
    done
    if ${stage_started} || stale "${expdir}/scores.json" "${collected[@]}" \
        || [ ! -f RESULTS.md ]; then
        start_stage_8
        # record this stage's time before the tables are written, so the total includes it
        end_stage
        macro_args=()
        if ${macro_average}; then macro_args=(--macro_average); fi
        ${python} -m espnet_prune.bin.make_results --expdir "${expdir}" --models ${models} \
            --test_sets ${test_sets} --inference_tag "${inference_tag}" \
            --output_json "${expdir}/scores.json" --output_md RESULTS.md \
            --title "${results_title}" --command "${run_args}" "${macro_args[@]}" \
            --plot "${expdir}/results.png"
        cat RESULTS.md
    else
        log "Stage 8: skipped (${expdir}/scores.json is up to date)"
    fi
fi

packed_dir="${expdir}/packed"
if in_range 9 && ! ${skip_packing}; then
    # the command that made the models: run.sh's (diar.sh's parent) when it called us
    train_command=$(tr '\0' ' ' < "/proc/${PPID}/cmdline" 2>/dev/null || true)
    if [[ "${train_command}" != *run.sh* ]]; then train_command="${run_args}"; fi
    train_command=$(sed -e 's/^\(ba\)\?sh //' -e 's/ *$//' <<< "${train_command}")
    corpus="${pack_corpus:-$(basename "$(dirname "$(pwd)")")}"
    stage_started=false
    for name in ${models}; do
        mdir=$(model_dir "${name}")
        mfile=$(model_file "${name}")
        archive="${packed_dir}/${name}.zip"
        inputs=("${mfile}" "${mdir}/config.yaml" "${expdir}/scores.json" RESULTS.md)
        if [ -f "${mdir}/inference.yaml" ]; then inputs+=("${mdir}/inference.yaml"); fi
        fresh=true
        for f in "${inputs[@]}"; do [ "${f}" -nt "${archive}" ] && fresh=false; done
        if [ -f "${archive}" ] && ${fresh} && ! redo_stage 9; then
            log "${name}: packed (${archive})"
            continue
        fi
        require_file "${inputs[@]}"
        if ! ${stage_started}; then
            begin_stage 9 "packing: ${packed_dir}/<model>.zip"; stage_started=true
        fi
        ${python} -m espnet_prune.bin.diar_pack --model_dir "${mdir}" --model_file "${mfile}" \
            --name "${name}" --output "${archive}" --scores "${expdir}/scores.json" \
            --results RESULTS.md --corpus "${corpus}" --command "${train_command}" \
            --licence "${pack_licence}"
    done
    if ${stage_started}; then end_stage; fi
fi

if in_range 10 && ! ${skip_upload_hf}; then
    if [ -z "${hf_repo}" ]; then log "error: --hf_repo USER/NAME is required for stage 10"; exit 2; fi
    begin_stage 10 "Hugging Face repo folders: ${expdir}/hf_upload/<model>"
    push=()
    for name in ${models}; do
        archive="${packed_dir}/${name}.zip"
        require_file "${archive}"
        folder="${expdir}/hf_upload/${name}"
        rm -rf "${folder}"
        mkdir -p "${folder}"
        ${python} -m zipfile -e "${archive}" "${folder}"
        push+=("hf upload ${hf_repo}_${name} ${folder} . --repo-type model")
    done
    end_stage
    # nothing is pushed here (the recipe runs offline): the command is for the user
    log "To publish (after 'hf auth login'):"
    log "  $(printf '%s && ' "${push[@]}" | sed -e 's/ && $//')"
fi

log "Successfully finished. [elapsed=${SECONDS}s]"
