#!/usr/bin/env bash
# Measures what the container init's filesystem setup costs when done in C:
# every mount, device node, masked and read-only path of Berth's spec on a
# cgroup v1 host with a cgroup namespace, and the pivot_root, with the new
# mount API and each target resolved with openat2 under the root
# (e2e/initfloor/mounts.c). libcontainer's Go init does the same in about 6
# ms a start; docs/performance.md, "A C path for the init", has the figures
# and the design they are for.
#
# Each of N forked children unshares mount, cgroup, ipc and uts namespaces,
# does the work on a busybox root and reports its own CPU time; the second
# line is the same children with the namespaces only. Nothing outlives a
# child (its mount namespace goes with it); the busybox root gets the three
# /etc files once. Needs root, gcc and a kernel with openat2 and the new
# mount API (5.6 and later). Takes the kernel-test lock for the run (a few
# seconds). MOUNTS_SHOW=1 prints one child's mountinfo, /dev and cgroups.
#
# Usage: bash e2e/init-floor.sh [N]   (default 200)
set -euo pipefail
n=${1:-200}
repo=$(cd "$(dirname "$0")/.." && pwd)
lock=${BERTH_KERNEL_LOCK:-/tmp/berth-kernel.lock}
[ "$(id -u)" = 0 ] || { echo "init-floor: needs root"; exit 2; }
work=$(mktemp -d /var/tmp/init-floor.XXXXXX)
trap 'rm -rf "$work"' EXIT
gcc -O2 -Wall -o "$work/mounts" "$repo/e2e/initfloor/mounts.c"
(cd "$repo" && GOFLAGS=-tags=seccomp,netgo,osusergo go run ./examples/hello/mkbusybox "$work/busybox.tar")
mkdir -p "$work/rootfs" "$work/etc"
tar -xf "$work/busybox.tar" -C "$work/rootfs"
printf '127.0.0.1\tlocalhost\n' >"$work/etc/hosts"
echo ctr >"$work/etc/hostname"
printf 'nameserver 127.0.0.11\n' >"$work/etc/resolv.conf"
if [ -n "${MOUNTS_SHOW:-}" ]; then
	flock "$lock" env MOUNTS_SHOW=1 "$work/mounts" "$work/rootfs" "$work/etc" 1
	exit
fi
flock "$lock" sh -c '"$1" "$2" "$3" "$4" && "$1" "$2" "$3" "$4" nomounts' _ "$work/mounts" "$work/rootfs" "$work/etc" "$n"
