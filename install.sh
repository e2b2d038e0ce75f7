#!/usr/bin/env bash
# Install HelpFaster Box into ./.venv and place the default models in ./models.
#   ./install.sh                    runtime only, exactly the versions in requirements.lock
#   ./install.sh --dev              plus the test tools (requirements-dev.lock)
#   ./install.sh --make-bundle      write dist/helpfaster-box-<version>-<platform>-py<X.Y>.tar:
#                                   every wheel, the models and the source, for an offline host
#   ./install.sh --from-bundle DIR  install from an extracted bundle with no network at all
#                                   (or --from-bundle FILE.tar: extract it here, then install)
#   ./install.sh --make-binary      write dist/helpfaster-box, one executable (see scripts/binary)
# Idempotent: a second run checks what is there and changes nothing.
# Python 3.13, 3.12 or 3.11 (the newest found; PYTHON=/path/to/python to choose).
set -euo pipefail
export ORIG_PWD="$PWD"  # where relative paths given on the command line start
cd "$(dirname "$0")"
. scripts/common.sh

DEV=0 MODE=install BUNDLE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dev) DEV=1 ;;
    --make-bundle) MODE=make-bundle ;;
    --from-bundle) MODE=from-bundle; BUNDLE="${2:-}"; shift || true
                   [ -n "$BUNDLE" ] || die "--from-bundle needs a bundle file or directory" ;;
    --make-binary) MODE=make-binary ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) die "unknown option $1 (try --help)" ;;
  esac
  shift
done

case "$MODE" in
  make-bundle) exec scripts/bundle make ;;
  from-bundle) exec scripts/bundle install "$BUNDLE" ;;
  make-binary) exec scripts/binary ;;
esac

PYTHON="$(pick_python)"
lock=requirements.lock; [ "$DEV" = 1 ] && lock=requirements-dev.lock
grep -qx "# inputs: $("$PYTHON" scripts/lock_inputs.py)" "$lock" || \
  die "$lock is older than pyproject.toml's dependencies: run scripts/lock (needs uv: pip install uv) and commit it"
stamp=".venv/.installed"
want="$(cat requirements-build.lock "$lock" pyproject.toml | sha256sum | cut -c1-16) $lock"

if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  say "Python environment .venv is up to date"
else
  if [ ! -x .venv/bin/python ]; then
    say "Creating .venv with $PYTHON ($("$PYTHON" -V 2>&1))"
    "$PYTHON" -m venv .venv
  fi
  if ! .venv/bin/python -c 'import llama_cpp' 2>/dev/null; then
    need_compiler  # llama-cpp-python is an sdist: built once per Python version, then cached by pip
  fi
  say "Installing the pinned dependencies of $lock into .venv (the first install compiles llama.cpp: ~5 min)"
  .venv/bin/python -m pip install --quiet --require-hashes -r requirements-build.lock
  .venv/bin/python -m pip install --quiet --require-hashes -r "$lock"
  .venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
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
