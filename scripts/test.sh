#!/usr/bin/env bash
# Install everything the tests need, lint, and run the whole suite (unit + integration).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
# The docs site, its reference pages generated from the code (docs/hooks/reference.py). Not --quiet: with
# it mkdocs 1.6 counts no warnings, and --strict would pass a broken link or a page missing from nav.
NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --site-dir "$(mktemp -d)"
# The studio's browser tests drive Debian's Chromium through its chromedriver (selenium); the export
# tests check the EPUB with Debian's EPUBCheck.
PACKAGES=()
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  PACKAGES+=(chromium chromium-driver)
fi
command -v epubcheck >/dev/null || PACKAGES+=(epubcheck)
if [ ${#PACKAGES[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${PACKAGES[@]}" >/dev/null
fi
# The slowest tests are listed so a run near the half-hour budget shows where the time goes.
.venv/bin/pytest -q --durations=25
