#!/usr/bin/env bash
# Run a command as a Slurm job (array) and wait for it; same interface as run_local.sh:
#
#   run_slurm.sh [--gpu N] [--mem M] [--num_threads N] [--time T] [--partition P]
#                [--max_jobs_run N] [--num_nodes N] [JOB=1:N] LOG command [args...]
#
# --gpu N asks for N GPUs (--gres=gpu:N, per node), --num_threads for CPUs per task;
# --num_nodes N > 1 gives each job N nodes with one task each (the command starts srun). The
# partition defaults to $SLURM_PARTITION; extra sbatch options can be given in $SLURM_EXTRA_OPTS.
# Every "JOB" in LOG and in the command is replaced by the array task id. The job runs in
# the current directory with the current environment (sbatch --export=ALL), and this script
# returns once all tasks have ended, with a non-zero status if any failed.
set -u
gpu=0; mem=""; num_threads=1; time_limit=""; partition="${SLURM_PARTITION:-}"; max_jobs_run=0
num_nodes=1
while [ $# -gt 0 ]; do
    case "$1" in
        --gpu) gpu="$2"; shift 2 ;;
        --mem) mem="$2"; shift 2 ;;
        --num_threads) num_threads="$2"; shift 2 ;;
        --time) time_limit="$2"; shift 2 ;;
        --partition) partition="$2"; shift 2 ;;
        --max_jobs_run) max_jobs_run="$2"; shift 2 ;;
        --num_nodes) num_nodes="$2"; shift 2 ;;
        --tee|--config) shift 2 ;;
        --*) echo "$0: unknown option $1" 1>&2; exit 1 ;;
        *) break ;;
    esac
done
# shellcheck source=job_args.sh
. "$(dirname "${BASH_SOURCE[0]}")/job_args.sh"
log_dir="$(dirname "$log_template")"
mkdir -p "$log_dir/slurm"
script="$log_dir/slurm/$(basename "$log_template" | tr -c 'A-Za-z0-9._-' '_').sh"

sbatch_opts=(--wait --export=ALL --chdir="$PWD" --cpus-per-task="$num_threads"
             --job-name="$(basename "$log_template" .log)"
             --output="$log_dir/slurm/slurm-%A_%a.out" --array="$first-$last")
[ "$max_jobs_run" -gt 0 ] && sbatch_opts[-1]="--array=$first-$last%$max_jobs_run"
[ "$gpu" -gt 0 ] && sbatch_opts+=(--gres="gpu:$gpu")
[ "$num_nodes" -gt 1 ] && sbatch_opts+=(--nodes="$num_nodes" --ntasks-per-node=1)
[ -n "$mem" ] && sbatch_opts+=(--mem="$mem")
[ -n "$time_limit" ] && sbatch_opts+=(--time="$time_limit")
[ -n "$partition" ] && sbatch_opts+=(--partition="$partition")
# shellcheck disable=SC2206
[ -n "${SLURM_EXTRA_OPTS:-}" ] && sbatch_opts+=(${SLURM_EXTRA_OPTS})

{
    echo "#!/usr/bin/env bash"
    echo "id=\"\${SLURM_ARRAY_TASK_ID:?not run as a slurm array task}\""
    echo "log=$(printf '%q' "$log_template")"
    echo "cmd=$(printf '%q' "$command_template")"
    if [ -n "$job_var" ]; then
        echo "log=\"\${log//$job_var/\$id}\"; cmd=\"\${cmd//$job_var/\$id}\""
    fi
    cat <<'BODY'
mkdir -p "$(dirname "$log")"
start=$(date +%s)
{ echo "# $cmd"; echo "# Started at $(date) on $(hostname) (slurm job ${SLURM_JOB_ID:-?})"; } > "$log"
bash -c "$cmd" >> "$log" 2>&1
rc=$?
{ echo "# Accounting: time=$(( $(date +%s) - start )) threads=${SLURM_CPUS_PER_TASK:-1}"
  echo "# Ended (code $rc) at $(date), elapsed time $(( $(date +%s) - start )) seconds"; } >> "$log"
exit $rc
BODY
} > "$script"
chmod +x "$script"

if ! command -v sbatch > /dev/null; then
    echo "$0: sbatch not found; use the local backend (CMD_BACKEND=local in cmd.sh)" 1>&2
    exit 1
fi
if ! sbatch "${sbatch_opts[@]}" "$script"; then
    echo "$0: slurm job failed; logs: $log_template (scheduler output in $log_dir/slurm)" 1>&2
    exit 1
fi
exit 0
