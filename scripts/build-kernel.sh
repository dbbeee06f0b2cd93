#!/usr/bin/env bash
# Build (or reuse) umlfleet's lean User Mode Linux kernel.
#
#   scripts/build-kernel.sh            # prints the kernel path (last stdout line)
#
# Inputs:
#   - Debian's linux-source-6.1 (/usr/src/linux-source-6.1.tar.xz)
#   - base config: `make ARCH=um defconfig` (see docs/kernel.md for why)
#   - fragment:    kernel/lean.config
#   - patches:     kernel/patches/*.patch, applied in name order (why each:
#                  its header; docs/kernel.md)
# Output:
#   <cache>/kernels/lean-<hash>/linux   (plus config, build.log, build-info)
#   <cache> = ${UMLFLEET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/umlfleet}
#   <hash>  = first 16 hex of sha256(source package version, base config
#             choice, fragment contents, patches)
#
# Idempotent: if lean-<hash>/linux exists nothing is built. Safe to run
# concurrently (an flock serialises builds). Everything except the final
# path goes to stderr.
set -euo pipefail

log() { printf 'build-kernel: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FRAGMENT=${UMLFLEET_KERNEL_FRAGMENT:-$REPO_DIR/kernel/lean.config}
CACHE=$(realpath -m -- "${UMLFLEET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/umlfleet}")
KERNELS=$CACHE/kernels
SRC_PKG=linux-source-6.1
SRC_TARBALL=/usr/src/linux-source-6.1.tar.xz
BASE_CONFIG=defconfig
PATCH_DIR=$REPO_DIR/kernel/patches
PATCHES=()
if [[ -d $PATCH_DIR ]]; then
  while IFS= read -r -d '' p; do PATCHES+=("$p"); done < <(find "$PATCH_DIR" -maxdepth 1 -name '*.patch' -print0 | sort -z)
fi

[[ -f $FRAGMENT ]] || die "fragment not found: $FRAGMENT"

# --- build dependencies -----------------------------------------------------
# gcc/make/libc headers (build-essential), bc/bison/flex (kbuild, kconfig),
# xz-utils (unpack), libvdeplug-dev (CONFIG_UML_NET_VDE links libvdeplug.a).
# No libssl-dev/libelf-dev: module signing and objtool are not used for
# ARCH=um without modules.
DEPS=("$SRC_PKG" build-essential bc bison flex xz-utils libvdeplug-dev patch)

pkg_installed() {
  [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true) == 'install ok installed' ]]
}

ensure_pkgs() {
  local missing=() p
  for p in "$@"; do pkg_installed "$p" || missing+=("$p"); done
  ((${#missing[@]} == 0)) && return 0
  log "installing: ${missing[*]}"
  local sudo=()
  ((EUID == 0)) || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  if ! "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >&2; then
    "${sudo[@]}" apt-get update >&2
    "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >&2
  fi
}

# The source version is part of the hash, so the source package comes first.
ensure_pkgs "$SRC_PKG"
SRC_VERSION=$(dpkg-query -W -f='${Version}' "$SRC_PKG")
[[ -f $SRC_TARBALL ]] || die "missing $SRC_TARBALL"

HASH=$(
  {
    printf 'source=%s %s\n' "$SRC_PKG" "$SRC_VERSION"
    printf 'base=%s\n' "$BASE_CONFIG"
    printf 'fragment:\n'
    cat "$FRAGMENT"
    for p in "${PATCHES[@]}"; do printf 'patch %s:\n' "$(basename "$p")"; cat "$p"; done
  } | sha256sum | cut -c1-16
)
PATCH_HASH=$(cat /dev/null "${PATCHES[@]}" | sha256sum | cut -c1-12)
OUT_DIR=$KERNELS/lean-$HASH
KERNEL=$OUT_DIR/linux

if [[ -x $KERNEL ]]; then
  log "cached: $KERNEL"
  printf '%s\n' "$KERNEL"
  exit 0
fi

mkdir -p "$KERNELS"
exec 9>"$KERNELS/.build.lock"
log "waiting for build lock" ; flock 9
if [[ -x $KERNEL ]]; then   # built by a concurrent run meanwhile
  log "cached: $KERNEL"
  printf '%s\n' "$KERNEL"
  exit 0
fi

ensure_pkgs "${DEPS[@]}"

# --- unpack and patch the source once per source version and patch set ------
SRC_DIR=$KERNELS/src-$SRC_VERSION-p$PATCH_HASH
if [[ ! -f $SRC_DIR/.umlfleet-unpacked ]]; then
  log "unpacking $SRC_TARBALL -> $SRC_DIR"
  rm -rf "$SRC_DIR" "$SRC_DIR.tmp"
  mkdir -p "$SRC_DIR.tmp"
  tar -C "$SRC_DIR.tmp" -xf "$SRC_TARBALL"
  for p in "${PATCHES[@]}"; do
    log "applying $(basename "$p")"
    patch -d "$SRC_DIR.tmp/linux-source-6.1" -p1 --forward --quiet <"$p" >&2 || die "patch failed: $p"
  done
  mv "$SRC_DIR.tmp/linux-source-6.1" "$SRC_DIR"
  rmdir "$SRC_DIR.tmp"
  touch "$SRC_DIR/.umlfleet-unpacked"
fi
# Source trees of older patch sets are not needed any more (~1.3 GB each).
for old in "$KERNELS"/src-*; do
  [[ $old == "$SRC_DIR" || ! -d $old ]] || rm -rf "$old"
done

# --- configure (out of tree, so one source tree serves every profile) -------
# One object tree, kept between builds (the lock serialises them), so a
# variant (another fragment: kernel-lab's LOCALVERSION, a Kernel's extraConfig)
# recompiles only what its changed options reach: Kbuild records each object's
# CONFIG_ dependencies and command line. Its path never changes (the command
# lines name it). Kept only when the build before finished and used this
# source tree; otherwise made anew. About 300 MB.
BUILD_DIR=$KERNELS/build
rm -rf "$KERNELS"/build-*   # per-hash trees of earlier versions of this script
if [[ ! -f $BUILD_DIR/.umlfleet-finished || $(cat "$BUILD_DIR/.umlfleet-src" 2>/dev/null) != "$SRC_DIR" ]]; then
  rm -rf "$BUILD_DIR"
fi
mkdir -p "$BUILD_DIR"
rm -f "$BUILD_DIR/.umlfleet-finished"
printf '%s\n' "$SRC_DIR" >"$BUILD_DIR/.umlfleet-src"
BUILD_LOG=$BUILD_DIR/build.log
: >"$BUILD_LOG"
MAKE=(make -C "$SRC_DIR" O="$BUILD_DIR" ARCH=um)

run_logged() {
  if ! "$@" >>"$BUILD_LOG" 2>&1; then
    tail -n 40 "$BUILD_LOG" >&2
    die "failed: $* (full log: $BUILD_LOG)"
  fi
}

log "configuring: $BASE_CONFIG + $FRAGMENT (hash $HASH)"
run_logged "${MAKE[@]}" "$BASE_CONFIG"
# merge_config.sh -m: merge only; olddefconfig then resolves dependencies.
run_logged env ARCH=um "$SRC_DIR/scripts/kconfig/merge_config.sh" -m \
  -O "$BUILD_DIR" "$BUILD_DIR/.config" "$FRAGMENT"
run_logged "${MAKE[@]}" olddefconfig

# Every line of the fragment must have survived dependency resolution.
bad=0
while IFS= read -r line; do
  if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
    if ! grep -qxF -- "$line" "$BUILD_DIR/.config"; then
      log "not honoured: $line (got: $(grep -E "^(# )?${BASH_REMATCH[1]}[= ]" "$BUILD_DIR/.config" || echo 'absent'))"
      bad=1
    fi
  elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
    if grep -qE "^${BASH_REMATCH[1]}=" "$BUILD_DIR/.config"; then
      log "not honoured: $line (got: $(grep -E "^${BASH_REMATCH[1]}=" "$BUILD_DIR/.config"))"
      bad=1
    fi
  fi
done <"$FRAGMENT"
((bad == 0)) || die "fragment not honoured (see above); fix $FRAGMENT"

# --- build --------------------------------------------------------------------
JOBS=$(nproc)
log "building with make -j$JOBS (log: $BUILD_LOG)"
start=$(date +%s)
run_logged "${MAKE[@]}" -j"$JOBS" linux
secs=$(( $(date +%s) - start ))
log "built in ${secs}s"

# --- install atomically -------------------------------------------------------
# Stripping drops the ELF symbol table only (no DWARF is built): the guest's
# own oops/stack output uses kallsyms, which is inside the image. Keep the
# unstripped binary next to it for gdb.
TMP_OUT=$KERNELS/.lean-$HASH.tmp.$$
rm -rf "$TMP_OUT"
mkdir -p "$TMP_OUT"
cp "$BUILD_DIR/linux" "$TMP_OUT/linux.unstripped"
strip -o "$TMP_OUT/linux" "$BUILD_DIR/linux"
cp "$BUILD_DIR/.config" "$TMP_OUT/config"
cp "$FRAGMENT" "$TMP_OUT/lean.config"
((${#PATCHES[@]} == 0)) || cp "${PATCHES[@]}" "$TMP_OUT/"
cp "$BUILD_LOG" "$TMP_OUT/build.log"
{
  printf 'source=%s %s\n' "$SRC_PKG" "$SRC_VERSION"
  printf 'base=%s\n' "$BASE_CONFIG"
  printf 'hash=%s\n' "$HASH"
  printf 'build_seconds=%s\n' "$secs"
  printf 'jobs=%s\n' "$JOBS"
  printf 'built_at=%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  printf 'size_unstripped=%s\n' "$(stat -c %s "$TMP_OUT/linux.unstripped")"
  printf 'size=%s\n' "$(stat -c %s "$TMP_OUT/linux")"
} >"$TMP_OUT/build-info"
rm -rf "$OUT_DIR"
mv "$TMP_OUT" "$OUT_DIR"
# The object tree stays for the next build (above).
touch "$BUILD_DIR/.umlfleet-finished"

log "installed: $KERNEL ($(stat -c %s "$KERNEL") bytes)"
printf '%s\n' "$KERNEL"
