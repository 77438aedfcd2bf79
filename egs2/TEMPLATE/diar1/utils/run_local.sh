#!/usr/bin/env bash
# Run a command on this machine with its output in a log file (the "run.pl" role of cmd.sh).
#
#   run_local.sh [--gpu N] [--mem M] [--num_threads N] [--time T] [--max_jobs_run N]
#                [--tee true|false] [JOB=1:N] LOG command [args...]
#
# With JOB=a:b the command runs once per job id, in parallel (at most --max_jobs_run at a
# time), with every "JOB" in LOG and in the command replaced by the id. --gpu/--mem/--time
# are accepted for compatibility with the scheduler backends and ignored here. --tee true
# (single job only) also shows the output live, so progress bars are visible. The exit status
# is non-zero if any job failed; the log says which and where.
set -u
tee_output=false
max_jobs_run=0
while [ $# -gt 0 ]; do
    case "$1" in
        --gpu|--mem|--num_threads|--time|--config|--partition) shift 2 ;;
        --max_jobs_run) max_jobs_run="$2"; shift 2 ;;
        --num_nodes) if [ "$2" -gt 1 ]; then
                echo "$0: --num_nodes $2: several nodes need Slurm (CMD_BACKEND=slurm)" 1>&2
                exit 1
            fi; shift 2 ;;
        --tee) tee_output="$2"; shift 2 ;;
        --*) echo "$0: unknown option $1" 1>&2; exit 1 ;;
        *) break ;;
    esac
done
# shellcheck source=job_args.sh
. "$(dirname "${BASH_SOURCE[0]}")/job_args.sh"

run_one() {  # $1 = job id (or empty)
    local id="$1" log="$log_template" cmd="$command_template" start rc
    if [ -n "$job_var" ]; then
        log="${log//$job_var/$id}"; cmd="${cmd//$job_var/$id}"
    fi
    mkdir -p "$(dirname "$log")"
    start=$(date +%s)
    {
        echo "# $cmd"
        echo "# Started at $(date)"
    } > "$log"
    if [ "$tee_output" = true ] && [ -z "$job_var" ]; then
        set -o pipefail
        bash -c "$cmd" 2>&1 | tee -a "$log"
        rc=$?
        set +o pipefail
    else
        bash -c "$cmd" >> "$log" 2>&1
        rc=$?
    fi
    {
        echo "# Accounting: time=$(( $(date +%s) - start )) threads=1"
        echo "# Ended (code $rc) at $(date), elapsed time $(( $(date +%s) - start )) seconds"
    } >> "$log"
    if [ "$rc" -ne 0 ]; then echo "$0: command failed (code $rc), see $log" 1>&2; fi
    return "$rc"
}

if [ -z "$job_var" ]; then
    run_one ""
    exit $?
fi
status_dir="$(mktemp -d)"
trap 'rm -rf "$status_dir"' EXIT
for (( id = first; id <= last; id++ )); do
    if [ "$max_jobs_run" -gt 0 ]; then
        while [ "$(jobs -rp | wc -l)" -ge "$max_jobs_run" ]; do wait -n; done
    fi
    ( run_one "$id"; echo $? > "$status_dir/$id" ) &
done
wait
failed=0
for (( id = first; id <= last; id++ )); do
    if [ "$(cat "$status_dir/$id" 2>/dev/null || echo 1)" != 0 ]; then failed=$((failed + 1)); fi
done
if [ "$failed" -gt 0 ]; then
    echo "$0: $failed of $(( last - first + 1 )) jobs failed; logs: $log_template" 1>&2
    exit 1
fi
exit 0
