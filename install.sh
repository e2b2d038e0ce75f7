#!/usr/bin/env bash
# Install HelpFaster Box into ./.venv and place the default models in ./models.
#   ./install.sh          runtime only
#   ./install.sh --dev    plus the test tools
# Idempotent: a second run checks what is there and changes nothing.
set -euo pipefail
cd "$(dirname "$0")"

DEV=0
for arg in "$@"; do
  case "$arg" in
    --dev) DEV=1 ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $arg (try --help)" >&2; exit 2 ;;
  esac
done

say() { printf '==> %s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && \
       "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      PYTHON="$(command -v "$candidate")"; break
    fi
  done
fi
[ -n "$PYTHON" ] || die "Python 3.11 is required (python3.11 not found). Install it, e.g. 'apt install python3.11 python3.11-venv', or set PYTHON=/path/to/python3.11."
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null || die "$PYTHON lacks venv/ensurepip; install python3.11-venv."

extras=""; [ "$DEV" = 1 ] && extras="[dev]"
stamp=".venv/.installed"
want="$(cat pyproject.toml | sha256sum | cut -c1-16) extras=$extras"

if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  say "Python environment .venv is up to date"
else
  if ! .venv/bin/python -c 'import llama_cpp' 2>/dev/null; then
    command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 || \
      die "a C/C++ compiler is needed to build llama-cpp-python (apt install build-essential cmake)."
    command -v c++ >/dev/null 2>&1 || command -v g++ >/dev/null 2>&1 || \
      die "a C++ compiler is needed to build llama-cpp-python (apt install build-essential)."
  fi
  if [ ! -x .venv/bin/python ]; then
    say "Creating .venv with $PYTHON"
    "$PYTHON" -m venv .venv
  fi
  say "Installing helpfaster-box$extras into .venv (llama-cpp-python compiles on first install: ~5 min)"
  .venv/bin/python -m pip install --quiet --upgrade pip setuptools wheel
  .venv/bin/python -m pip install --quiet -e ".$extras"
  echo "$want" > "$stamp"
fi

if [ "$DEV" = 1 ]; then
  # The browser tests drive the system's Chromium through Playwright (never `playwright
  # install`: no browser download, the box is air-gapped).
  chromium="${HELPFASTER_CHROMIUM:-/usr/bin/chromium}"
  if [ -x "$chromium" ]; then
    say "Chromium for the browser tests: $chromium"
  elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "Installing Debian's chromium for the browser tests (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium
  else
    die "the browser tests need Chromium at $chromium: run 'sudo apt-get install chromium' (or set HELPFASTER_CHROMIUM=/path/to/chromium) and ./install.sh --dev again."
  fi
fi

say "Placing the default models in models/"
.venv/bin/python -m helpfaster_box.cli.models --models-dir models provision
.venv/bin/python -m helpfaster_box.cli.models --models-dir models verify

say "Done. Start the server with: .venv/bin/helpfaster-box serve"
