#!/bin/sh
# HelpFaster Box @VERSION@, single binary: this POSIX sh header, then a gzip'd tar of the
# PyInstaller one-dir build (interpreter, libraries, default models) from byte @OFFSET@.
# The first start of a build unpacks it once into $HELPFASTER_CACHE_DIR/bin/@ID@
# (default cache dir: $XDG_CACHE_HOME/helpfaster-box, else ~/.cache/helpfaster-box):
# into a temporary directory, every file checked against the tree's .sha256sums, a
# .complete marker holding the payload's sha256 written, synced, then renamed into
# place (atomic: a crash or a concurrent start never leaves a half tree under that
# name). Every start then execs the unpacked executable with the same arguments and
# environment. Only absolute paths of Debian's essential packages (dash, coreutils,
# tar, gzip): it works under `env -i`, with no PATH and no Python on the host.
# Written by scripts/selfextract.py from scripts/launcher.sh.
_hfb_key=@KEY@
_hfb_id=@ID@

_hfb_fail() {
  printf 'helpfaster-box: %s\n' "$1" >&2
  exit 1
}

if [ -n "${HELPFASTER_CACHE_DIR:-}" ]; then
  _hfb_cache=$HELPFASTER_CACHE_DIR
  case $_hfb_cache in "~/"*) _hfb_cache=${HOME:-}/${_hfb_cache#"~/"} ;; esac
elif [ -n "${XDG_CACHE_HOME:-}" ]; then
  _hfb_cache=$XDG_CACHE_HOME/helpfaster-box
elif [ -n "${HOME:-}" ]; then
  _hfb_cache=$HOME/.cache/helpfaster-box
else
  _hfb_fail "set HELPFASTER_CACHE_DIR (or HOME): the directory this binary unpacks into once"
fi
_hfb_dir=$_hfb_cache/bin/$_hfb_id

# A tree is used only if its marker holds this build's hash (written last, before the rename).
_hfb_complete() {
  [ -x "$_hfb_dir/helpfaster-box" ] && [ -f "$_hfb_dir/.complete" ] || return 1
  read -r _hfb_got < "$_hfb_dir/.complete" && [ "$_hfb_got" = "$_hfb_key" ]
}

_hfb_unpack() {
  /bin/mkdir -p "$_hfb_cache/bin" || _hfb_fail "cannot create $_hfb_cache/bin"
  # Temporary trees of starts that died mid-unpack: .unpack-PID-..., their PID gone.
  for _hfb_t in "$_hfb_cache/bin"/.unpack-*; do
    [ -d "$_hfb_t" ] || continue
    _hfb_pid=${_hfb_t##*/.unpack-}
    _hfb_pid=${_hfb_pid%%-*}
    if [ -d /proc/self ] && [ ! -d "/proc/$_hfb_pid" ]; then /bin/rm -rf "$_hfb_t"; fi
  done
  # A tree there with no valid marker was not made by a launcher (renamed in whole, marker
  # inside): set it aside. A concurrent start's tree, once renamed in, is complete.
  if [ -e "$_hfb_dir" ] && ! _hfb_complete; then
    /bin/mv -T "$_hfb_dir" "$_hfb_cache/bin/.unpack-$$-old" && /bin/rm -rf "$_hfb_cache/bin/.unpack-$$-old"
  fi
  _hfb_tmp=$_hfb_cache/bin/.unpack-$$-$_hfb_id
  /bin/rm -rf "$_hfb_tmp"
  /bin/mkdir "$_hfb_tmp" || _hfb_fail "cannot create $_hfb_tmp"
  printf 'helpfaster-box: first start of this build: unpacking into %s\n' "$_hfb_dir" >&2
  # dash has no pipefail: a short read or a bad stream shows as a tar error or a
  # missing/mismatching file in the sha256 check below.
  /usr/bin/tail -c +@OFFSET@ "$0" | /bin/gzip -dc | /bin/tar -xf - -C "$_hfb_tmp" --no-same-owner \
    || { /bin/rm -rf "$_hfb_tmp"; _hfb_fail "unpacking failed (disk full? damaged file? check it against helpfaster-box.sha256)"; }
  (cd "$_hfb_tmp" && /usr/bin/sha256sum -c --quiet --strict .sha256sums >&2) \
    || { /bin/rm -rf "$_hfb_tmp"; _hfb_fail "the unpacked files do not match their sha256: the binary is damaged"; }
  printf '%s\n' "$_hfb_key" > "$_hfb_tmp/.complete" && /bin/sync -f "$_hfb_tmp/.complete" \
    || { /bin/rm -rf "$_hfb_tmp"; _hfb_fail "cannot write $_hfb_tmp/.complete"; }
  # rename(2) of a directory fails if the target exists and is not empty: then a
  # concurrent start won the race, and its tree is used.
  /bin/mv -T "$_hfb_tmp" "$_hfb_dir" 2>/dev/null || /bin/rm -rf "$_hfb_tmp"
  _hfb_complete || _hfb_fail "no usable tree in $_hfb_dir after unpacking"
}

_hfb_complete || _hfb_unpack
exec "$_hfb_dir/helpfaster-box" "$@"
