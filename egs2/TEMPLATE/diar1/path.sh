# Environment of the diar1 recipes: the repository's Python environment and the recipe utils.
# Sourced by diar.sh from the recipe directory (egs2/<corpus>/diar1).
# (resolved through symlinks: a recipe's path.sh may be a link to this file)
MAIN_ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../../.." && pwd)"
export MAIN_ROOT
if [ -f "${MAIN_ROOT}/tools/activate_python.sh" ]; then
    # shellcheck disable=SC1091
    . "${MAIN_ROOT}/tools/activate_python.sh"
elif [ -x "${MAIN_ROOT}/tools/venv/bin/python" ]; then
    export PATH="${MAIN_ROOT}/tools/venv/bin:${PATH}"
fi
export PATH="${PWD}/utils:${PATH}"
export PYTHONIOENCODING=UTF-8
# warnings from libraries are noise in the logs; errors still show
export PYTHONWARNINGS="${PYTHONWARNINGS:-ignore::FutureWarning,ignore::DeprecationWarning}"
