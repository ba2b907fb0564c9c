#!/usr/bin/env bash
# Install everything the tests need, lint, and run the whole suite (unit + integration).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/pytest -q
