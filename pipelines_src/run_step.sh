#!/usr/bin/env bash
# Runs one step script of the model-build pipeline from the source tarball:
#
#   bash run_step.sh <script>.py [args...]
#
# The tarball (pipelines_src/packaging.py) is the one *.gz or *.tgz file in RUN_STEP_SOURCE_DIR (a CDK
# asset arrives as <content hash>.gz), by default
# the processing job's "source" input. It is extracted into a scratch folder and the script runs
# from there with python3 (RUN_STEP_PYTHON), given the remaining arguments; sibling modules of the
# script are importable because its folder is on sys.path.
set -euo pipefail

if [[ $# -lt 1 ]]; then
    echo "usage: run_step.sh <script>.py [args...]" >&2
    exit 64
fi
script="$1"
shift
if [[ "$script" != *.py || "$script" == */* ]]; then
    echo "run_step.sh: '$script' is not the file name of a step script (<name>.py)" >&2
    exit 64
fi

source_dir="${RUN_STEP_SOURCE_DIR:-/opt/ml/processing/input/source}"
shopt -s nullglob
tarballs=("$source_dir"/*.gz "$source_dir"/*.tgz)
shopt -u nullglob
if [[ ${#tarballs[@]} -ne 1 ]]; then
    echo "run_step.sh: expected one .gz or .tgz tarball in $source_dir, found ${#tarballs[@]}" >&2
    exit 66
fi

work_dir="$(mktemp -d "${TMPDIR:-/tmp}/run_step.XXXXXX")"
tar -xzf "${tarballs[0]}" -C "$work_dir"
if [[ ! -f "$work_dir/$script" ]]; then
    echo "run_step.sh: $script is not in ${tarballs[0]}; it holds: $(cd "$work_dir" && ls -m)" >&2
    exit 66
fi
exec "${RUN_STEP_PYTHON:-python3}" "$work_dir/$script" "$@"
