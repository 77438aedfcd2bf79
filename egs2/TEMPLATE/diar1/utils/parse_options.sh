#!/usr/bin/env bash
# Option parsing for recipe scripts, sourced *after* the defaults are set:
#
#   stage=1; ngpu=0; test_sets="test"
#   . utils/parse_options.sh
#
# Accepts "--name value" and "--name=value" for every variable that is already defined
# ("-" in names is read as "_"), "--config FILE" to source a file of name=value lines first,
# and "--help"/"-h" to print "$help_message". A variable whose default is true/false only
# accepts true/false. Parsed options are removed from "$@"; positional arguments stay.
# An unknown option or a missing value is an error (exit status 1), so a typo cannot pass
# silently.

__po_args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --help|-h)
            if [ -n "${help_message:-}" ]; then echo "$help_message"; else echo "no help message"; fi
            exit 0 ;;
        --*=*)
            __po_name="${1%%=*}"; __po_value="${1#*=}"; shift ;;
        --?*)
            if [ $# -lt 2 ]; then
                echo "$0: option $1 needs a value" 1>&2; exit 1
            fi
            __po_name="$1"; __po_value="$2"; shift 2 ;;
        *)
            __po_args+=("$1"); shift; continue ;;
    esac
    __po_name="${__po_name#--}"
    __po_name="${__po_name//-/_}"
    if ! [[ "${__po_name}" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
        echo "$0: invalid option name --${__po_name}" 1>&2; exit 1
    fi
    if [ "${__po_name}" = config ]; then
        if [ ! -f "${__po_value}" ]; then
            echo "$0: config file ${__po_value} does not exist" 1>&2; exit 1
        fi
        # shellcheck disable=SC1090
        . "${__po_value}" || { echo "$0: could not source ${__po_value}" 1>&2; exit 1; }
        continue
    fi
    if [ -z "${!__po_name+defined}" ]; then
        echo "$0: unknown option --${__po_name}" 1>&2
        [ -n "${help_message:-}" ] && echo "$help_message" 1>&2
        exit 1
    fi
    __po_old="${!__po_name}"
    if [ "${__po_old}" = true ] || [ "${__po_old}" = false ]; then
        if [ "${__po_value}" != true ] && [ "${__po_value}" != false ]; then
            echo "$0: --${__po_name} takes true or false, got '${__po_value}'" 1>&2; exit 1
        fi
    fi
    printf -v "${__po_name}" '%s' "${__po_value}"
done
set -- "${__po_args[@]}"
unset __po_args __po_name __po_value __po_old
true
