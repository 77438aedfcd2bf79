#!/usr/bin/env bash
# The "[JOB=a:b] LOG command [args...]" arguments of run_local.sh and run_slurm.sh, sourced by
# both after their own options: sets job_var (empty without a job range), first, last,
# log_template and command_template (every argument quoted, so that the command survives
# "bash -c" unchanged). A usage error exits with status 1.
if [ $# -lt 2 ]; then
    echo "usage: $0 [options] [JOB=1:N] LOG command [args...]" 1>&2; exit 1
fi
job_var=""; first=1; last=1
if [[ "$1" =~ ^([A-Za-z_][A-Za-z0-9_]*)=([0-9]+):([0-9]+)$ ]]; then
    job_var="${BASH_REMATCH[1]}"; first="${BASH_REMATCH[2]}"; last="${BASH_REMATCH[3]}"; shift
    if [ "$first" -gt "$last" ]; then echo "$0: empty job range $first:$last" 1>&2; exit 1; fi
elif [[ "$1" =~ ^[A-Za-z_][A-Za-z0-9_]*=[0-9]+$ ]]; then
    job_var="${1%%=*}"; first="${1#*=}"; last="$first"; shift
fi
log_template="$1"; shift
if [ $# -eq 0 ]; then echo "$0: no command given" 1>&2; exit 1; fi
command_template="$(printf '%q ' "$@")"
