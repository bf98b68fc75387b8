#!/usr/bin/env bash
# Builds the root filesystems of the service images the e2e tests and
# examples/webapp use (redis, postgres), and of the golang image that
# examples/goapp builds with, with debootstrap from Debian's packages, and caches them outside the clone, keyed by package version:
#
#   e2e/images/build.sh [CACHE_DIR]     (default /var/cache/berth-ci)
#
# prints one line per image: NAME TARBALL. A tarball already in the cache
# is reused; a new Debian version of a package makes a new one.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${1:-/var/cache/berth-ci}
suite=bookworm
# The mirror this machine's apt uses, so the build needs no other network.
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
if [[ -z "$mirror" ]]; then
  mirror=$(awk '$1 == "deb" && $3 == "'$suite'" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
fi
mirror=${mirror:-http://deb.debian.org/debian}
mkdir -p "$cache"
# One build at a time on a machine; what a killed build left goes first
# (unmounting what debootstrap had mounted in it, then removing it).
exec 9>"$cache/.images.lock"
flock 9
drop_root() {
  awk -v r="$1/" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r | xargs -r -n1 umount -l
  rm -rf "$1" "$1.log"
}
for stale in "$cache"/.redis-* "$cache"/.postgres-* "$cache"/.golang-*; do
  [[ -d "$stale" ]] && drop_root "$stale"
done

version() { apt-cache policy "$1" | awk '/Candidate:/ {print $2}' | tr ':~+' '___'; }

# build NAME PACKAGE [SETUP]: debootstrap minbase with PACKAGE, then SETUP
# (a function run with the root as $1), then a tarball with numeric owners.
build() {
  local name=$1 pkg=$2 setup=${3:-}
  local ver; ver=$(version "$pkg")
  [[ -n "$ver" ]] || { echo "build.sh: no candidate for $pkg (apt-get update?)" >&2; return 1; }
  # The key: the package's version and this directory's scripts.
  local out="$cache/$name-$suite-$ver-$(cat "$here"/*.sh | sha256sum | cut -c1-8).tar"
  if [[ ! -s "$out" ]]; then
    local root; root=$(mktemp -d "$cache/.$name-XXXXXX")
    trap 'drop_root "$root"' RETURN
    debootstrap --variant=minbase --include="$pkg" "$suite" "$root" "$mirror" >"$root.log" 2>&1 ||
      { tail -20 "$root.log" >&2; return 1; }
    [[ -n "$setup" ]] && "$setup" "$root"
    # What an image does not need: package caches, lists, docs, and the
    # device nodes debootstrap made (a container gets its own /dev; Berth
    # refuses device nodes in layers).
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
      "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/* "$root"/dev/*
    tar -C "$root" --numeric-owner -cf "$out.tmp" .
    mv "$out.tmp" "$out"
    # Older versions of this image are dead weight now.
    find "$cache" -maxdepth 1 -name "$name-$suite-*.tar*" ! -path "$out" -delete
  fi
  echo "$name $out"
}

setup_postgres() {
  install -m 0755 "$here/postgres-entrypoint.sh" "$1/usr/local/bin/docker-entrypoint.sh"
  mkdir -p "$1/docker-entrypoint-initdb.d" "$1/var/lib/postgresql/data" "$1/run/postgresql"
  chroot "$1" chown -R postgres:postgres /var/lib/postgresql /run/postgresql
  # The JIT's LLVM is most of the image; without it postgres runs queries
  # uncompiled, as with jit = off.
  rm -rf "$1"/usr/lib/postgresql/*/lib/llvmjit* "$1"/usr/lib/postgresql/*/lib/bitcode "$1"/usr/lib/x86_64-linux-gnu/libLLVM*
}

setup_golang() {
  # A build needs the compiler, the linker and the standard library's
  # sources; not their tests, test data, or the profiling tools.
  find "$1"/usr/share/go-* "$1"/usr/lib/go-* \( -name testdata -type d -prune -exec rm -rf {} + \) -o \( -name '*_test.go' -delete \) 2>/dev/null || true
  rm -rf "$1"/usr/share/go-*/test "$1"/usr/share/go-*/api "$1"/usr/share/go-*/misc
  rm -f "$1"/usr/lib/go-*/pkg/tool/*/{pprof,trace,doc,fix,cover,test2json}
  # The go command's own packages, prebuilt: nothing a program links.
  rm -rf "$1"/usr/lib/go-*/pkg/*/cmd "$1"/usr/lib/go-*/pkg/*_race
}

build redis redis-server
build postgres postgresql setup_postgres
build golang golang-go setup_golang
