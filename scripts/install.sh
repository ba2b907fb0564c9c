#!/usr/bin/env bash
# Install novelcraft with the CPU extras into ./.venv.
# torch==2.13.0 first: that pin takes the CPU build; an unpinned torch would pull a multi-GB CUDA build.
# llama-cpp-python compiles at install (~12 min on 2 cores the first time; pip caches the wheel).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/pip install -q torch==2.13.0
CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}" .venv/bin/pip install -q -e '.[cpu]'
# Byte-compile the project's own modules: with PYTHONDONTWRITEBYTECODE set (as on these machines) Python
# never writes .pyc files and compiled every module at each start, a second of `novelcraft --help`.
.venv/bin/python -m compileall -q engine dataprep train > /dev/null
