# Shared by install.sh and scripts/bundle, scripts/binary (sourced, not run).

say() { printf '==> %s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

# The Python to install with: $PYTHON, else the newest of python3.13/3.12/3.11/python3
# that really runs and is 3.11-3.13 (pyenv shims of uninstalled versions fail the probe).
# PYTHON_VERSION=3.12 restricts the search to that version.
pick_python() {
  local candidates="python3.13 python3.12 python3.11 python3" c
  [ -n "${PYTHON_VERSION:-}" ] && candidates="python$PYTHON_VERSION python3"
  if [ -n "${PYTHON:-}" ]; then candidates="$PYTHON"; fi
  for c in $candidates; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c '
import sys
want = sys.argv[1]
ok = (3, 11) <= sys.version_info[:2] <= (3, 13) and (not want or "%d.%d" % sys.version_info[:2] == want)
sys.exit(0 if ok else 1)' "${PYTHON_VERSION:-}" 2>/dev/null; then
      "$c" -c 'import venv, ensurepip' 2>/dev/null || die "$c lacks venv/ensurepip; install python3-venv."
      command -v "$c"
      return 0
    fi
  done
  die "Python 3.11, 3.12 or 3.13 is required${PYTHON_VERSION:+ (this bundle: $PYTHON_VERSION)}. Install one (e.g. 'apt install python3 python3-venv' on Debian 13 / Ubuntu 24.04), or set PYTHON=/path/to/python3."
}

need_compiler() {
  command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 || \
    die "a C/C++ compiler is needed to build llama-cpp-python (apt install build-essential cmake)."
  command -v c++ >/dev/null 2>&1 || command -v g++ >/dev/null 2>&1 || \
    die "a C++ compiler is needed to build llama-cpp-python (apt install build-essential)."
}

project_version() {
  sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1
}
