#!/usr/bin/env bash
# Measures what other OCI runtimes spend to start a container from the very
# spec Berth generates, to put the container's share of a Berth start
# (libcontainer's create in the shim, its init, the entry) beside a C
# runtime's (crun) and Docker's runc binary. docs/performance.md, "The
# container's share", has the figures and what they mean.
#
# Berth brings up one busybox `sleep` service in a state root of its own and
# its spec (config.json) is copied and taken down again; then each runtime
# starts N containers from that spec, each `RUNTIME run -d` inside one
# cpuacct cgroup that also holds the containers' cgroups, so the figure is
# every process of the start: the runtime, its init and the command. The
# spec's network namespace becomes one shared namespace made here; the
# rootfs a copy of the busybox image. With "sec" the spec keeps Docker's
# seccomp profile (compiled by the runtime at every start, which Berth
# does once per profile); with "nosec" it has none.
#
# crun 1.8 (Debian bookworm) refuses hybrid cgroup hosts whose cgroup2 lists
# a controller; it runs in a mount namespace without /sys/fs/cgroup/unified,
# which it then treats as a cgroup v1 host (the same controllers Berth's
# containers see).
#
# Needs root, bin/berth (make build), busybox-static, and crun and/or runc
# (apt-get install crun; runc comes with docker.io). Takes the kernel-test
# lock for the whole run (about a minute).
#
# Usage: bash e2e/runtime-floor.sh [N [ROUNDS]]   (default 20 and 2)
set -uo pipefail
n=${1:-20}
rounds=${2:-2}
repo=$(cd "$(dirname "$0")/.." && pwd)
lock=${BERTH_KERNEL_LOCK:-/tmp/berth-kernel.lock}
berth=$repo/bin/berth
[ "$(id -u)" = 0 ] || { echo "runtime-floor: needs root"; exit 2; }
[ -x "$berth" ] || { echo "runtime-floor: no $berth (make build)"; exit 2; }
runtimes=()
for r in crun runc; do command -v $r >/dev/null && runtimes+=("$r"); done
((${#runtimes[@]})) || { echo "runtime-floor: neither crun nor runc installed"; exit 2; }

work=$(mktemp -d /var/tmp/runtime-floor.XXXXXX)
name=floor$$
cg=runtime-floor-$$
netns=runtime-floor-$$
(cd "$repo" && GOFLAGS=-tags=seccomp,netgo,osusergo go run ./examples/hello/mkbusybox "$work/busybox.tar") || exit 2
mkdir -p "$work/rootfs" "$work/project" && tar -xf "$work/busybox.tar" -C "$work/rootfs"
printf 'services:\n  s:\n    image: busybox\n    command: ["sleep", "3600"]\n' >"$work/project/compose.yaml"
echo ctr >"$work/hostname"
printf '127.0.0.1\tlocalhost\n' >"$work/hosts"
printf 'nameserver 127.0.0.11\n' >"$work/resolv.conf"

b() { (cd "$work/project" && BERTH_ROOT=$work/root BERTH_RUN=$work/run BERTH_DNS_UPSTREAMS=none "$berth" -p "$name" "$@"); }

cleanup() {
	local rt i d
	for rt in "${runtimes[@]}"; do
		for i in $(seq "$n"); do $rt --root "$work/state-$rt" delete -f "c$i" >/dev/null 2>&1; done
	done
	sleep 0.3
	for d in /sys/fs/cgroup/*/"$cg" /sys/fs/cgroup/unified/"$cg"; do
		[ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
	done
	ip netns del "$netns" 2>/dev/null
}

exec 9>"$lock"
flock 9
trap 'cleanup; b down -v -t 0 >/dev/null 2>&1; rm -rf "$work"' EXIT
# BERTH_DEBUG: a start hands its spec to the shim in memory and keeps a
# config.json only then.
b image import "$work/busybox.tar" busybox >/dev/null 2>&1 && BERTH_DEBUG=1 b up -d >/dev/null 2>&1 || { echo "runtime-floor: berth up failed"; exit 1; }
cp "$(ls "$work"/run/containers/*/config.json | head -1)" "$work/berth-spec.json"
b down -v -t 0 >/dev/null 2>&1
ip netns add "$netns"
for sec in nosec sec; do
	python3 - "$work" "$sec" "$netns" <<'EOF'
import json, sys
work, sec, netns = sys.argv[1:]
s = json.load(open(work + "/berth-spec.json"))
s["ociVersion"] = "1.0.2"  # the newest crun 1.8 knows; nothing in the spec needs more
s["root"] = {"path": work + "/rootfs"}
for m in s["mounts"]:
    if m["type"] == "bind":
        m["source"] = work + "/" + m["destination"].rsplit("/", 1)[1]
for ns in s["linux"]["namespaces"]:
    if ns["type"] == "network":
        ns["path"] = "/var/run/netns/" + netns
s["process"]["args"] = ["sleep", "3600"]
if sec == "nosec":
    s["linux"].pop("seccomp", None)
json.dump(s, open(work + "/spec-" + sec + ".json", "w"))
EOF
done

echo "CPU per container start, ms (cpuacct of the runtime, its init and the command; $n starts a run; machine shared)"
for round in $(seq "$rounds"); do
	for r in "${runtimes[@]}"; do
		for sec in nosec sec; do
			acct=/sys/fs/cgroup/cpuacct/$cg
			mkdir "$acct"
			for i in $(seq "$n"); do
				mkdir -p "$work/b$i"
				sed "s|\"cgroupsPath\": *\"[^\"]*\"|\"cgroupsPath\":\"/$cg/c$i\"|" "$work/spec-$sec.json" >"$work/b$i/config.json"
			done
			pre=true
			[ "$r" = crun ] && pre="umount /sys/fs/cgroup/unified"
			t0=$(date +%s%N)
			unshare -m --propagation private sh -c "$pre; for i in \$(seq $n); do
				sh -c 'echo \$\$ >$acct/cgroup.procs; exec $r --root $work/state-$r run -d --bundle $work/b'\$i' c'\$i </dev/null >/dev/null 2>$work/err || { cat $work/err; exit 1; }
			done"
			ok=$?
			t1=$(date +%s%N)
			running=$(cat /sys/fs/cgroup/pids/"$cg"/c*/cgroup.procs 2>/dev/null | wc -l)
			awk -v r="$r" -v s="$sec" -v u="$(cat "$acct/cpuacct.usage")" -v n="$n" -v w="$((t1 - t0))" -v k="$running" -v ok=$ok \
				'BEGIN {printf "%-5s %-6s %6.2f ms a start, %.3f s wall for %d, %d running%s\n", r, s, u/1e6/n, w/1e9, n, k, ok ? " (FAILED)" : ""}'
			cleanup
			ip netns add "$netns"
		done
	done
done
