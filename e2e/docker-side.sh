#!/usr/bin/env bash
# Runs the network benchmarks with Docker's daemon beside Berth, in one hold
# of the kernel-test lock, and puts the host back as it was before releasing
# it. Docker changes the host for everyone while it runs (the FORWARD
# policy to DROP, its chains in iptables' filter and nat tables for IPv4 and
# IPv6, docker0, cgroups), so it runs only here, never outside the lock.
#
# Needs root, Debian's docker.io installed but not running (install it with
# a policy-rc.d that exits 101 so that nothing starts), dnsperf and iperf3.
#
# Usage (from anywhere):  bash e2e/docker-side.sh [BENCH-REGEXP [BENCHTIME]]
# default: 'BenchmarkDNS$|BenchmarkPublishedPort$' and 3x. Berth is bin/berth
# (make build first). Output: the benchmark's lines on stdout and in
# /tmp/docker-side.out, dockerd's log in /tmp/docker-side-dockerd.log.
# Exit status 0 only if the benchmarks passed AND the host is as it was.
set -uo pipefail
bench=${1:-'BenchmarkDNS$|BenchmarkPublishedPort$'}
benchtime=${2:-3x}
repo=$(cd "$(dirname "$0")/.." && pwd)
lock=${BERTH_KERNEL_LOCK:-/tmp/berth-kernel.lock}
export GOFLAGS=-tags=seccomp,netgo,osusergo

[ "$(id -u)" = 0 ] || { echo "docker-side: needs root"; exit 2; }
command -v dockerd >/dev/null || { echo "docker-side: no dockerd (apt-get install docker.io, with a policy-rc.d exiting 101)"; exit 2; }
[ -x "$repo/bin/berth" ] || { echo "docker-side: no $repo/bin/berth (make build)"; exit 2; }
if pgrep -x dockerd >/dev/null || pgrep -x containerd >/dev/null; then
	echo "docker-side: a dockerd or containerd already runs on this host: not ours to start or stop"
	exit 2
fi

state=$(mktemp -d /tmp/docker-side.XXXXXX)
# Compiled before the lock: building touches no kernel object.
(cd "$repo" && go test -c -o "$state/e2e.test" ./e2e/) || exit 2

# snapshot writes what Docker may change on the host into directory $1,
# counters zeroed so that two snapshots compare.
snapshot() {
	mkdir -p "$1"
	local zero='s/\[[0-9]+:[0-9]+\]/[0:0]/; s/counter packets [0-9]+ bytes [0-9]+/counter/'
	for t in iptables-nft iptables-legacy ip6tables-nft ip6tables-legacy; do
		if command -v $t-save >/dev/null; then $t-save 2>/dev/null | grep -v '^#' | sed -E "$zero" >"$1/$t"; fi
	done
	nft list ruleset | sed -E "$zero" >"$1/nft"
	nft list tables >"$1/nft-tables"
	sysctl net.ipv4.ip_forward net.ipv6.conf.all.forwarding net.ipv6.conf.default.forwarding \
		net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables >"$1/sysctl" 2>/dev/null
	iptables -S FORWARD | head -1 >"$1/policy"
	ip6tables -S FORWARD | head -1 >>"$1/policy"
	ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort >"$1/links"
	{ ip route; ip -6 route; } | sort >"$1/routes"
	ls -d /sys/fs/cgroup/*/docker /sys/fs/cgroup/docker 2>/dev/null >"$1/cgroups"
	ls -d /run/docker /var/run/docker.sock /etc/docker/key.json 2>/dev/null >"$1/files"
	grep -F -e "$state" -e /var/lib/docker -e /run/docker /proc/self/mountinfo | awk '{print $5}' >"$1/mounts"
	{ pgrep -a -x dockerd; pgrep -a -x containerd; pgrep -a -x docker-proxy; pgrep -af containerd-shim; } >"$1/procs"
}

exec 9>"$lock"
echo "$(date -u +%T) docker-side: waiting for the kernel lock"
flock 9
echo "$(date -u +%T) docker-side: lock taken"
snapshot "$state/before"
iptables-save >"$state/before/iptables.restore"
ip6tables-save >"$state/before/ip6tables.restore"

# Docker with its state under $state, IPv6 NAT on (as Docker 27 and later
# have it by default; 20.10 needs --experimental for it), its own containerd.
sock=$state/docker.sock
export DOCKER_HOST=unix://$sock
dockerd --data-root "$state/data" --exec-root "$state/exec" --pidfile "$state/dockerd.pid" \
	-H "$DOCKER_HOST" --experimental --ip6tables >/tmp/docker-side-dockerd.log 2>&1 9>&- &
dockerd_pid=$!

# restore stops Docker and puts back what the snapshot saw.
restore() {
	set +e
	if [ -S "$sock" ]; then
		docker ps -aq | xargs -r docker rm -f -v >/dev/null
		docker network prune -f >/dev/null
	fi
	kill -TERM "$dockerd_pid" 2>/dev/null
	for _ in $(seq 60); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.5; done
	kill -KILL "$dockerd_pid" 2>/dev/null
	wait "$dockerd_pid" 2>/dev/null
	# Whatever of Docker outlived dockerd (its containerd, shims, proxies):
	# ours only, by their state directory.
	for p in $(pgrep -f "$state"); do kill -KILL "$p" 2>/dev/null; done
	# Firewall: the iptables tables that were there get their saved
	# contents back (a restore flushes a table it names, Docker's chains
	# with it); those Docker made are deleted.
	for fam in ip ip6; do
		for t in filter nat mangle raw security; do
			if nft list table $fam $t >/dev/null 2>&1 && ! grep -qx "table $fam $t" "$state/before/nft-tables"; then
				nft delete table $fam $t
			fi
		done
	done
	[ -s "$state/before/iptables.restore" ] && iptables-restore <"$state/before/iptables.restore"
	[ -s "$state/before/ip6tables.restore" ] && ip6tables-restore <"$state/before/ip6tables.restore"
	while read -r line; do sysctl -qw "${line// /}"; done <"$state/before/sysctl"
	for l in $(ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//'); do
		grep -qx "$l" "$state/before/links" || case $l in docker0 | br-* | veth*) ip link del "$l" ;; esac
	done
	grep -F "$state" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l
	for d in $(ls -d /sys/fs/cgroup/*/docker /sys/fs/cgroup/docker 2>/dev/null); do
		grep -qx "$d" "$state/before/cgroups" || find "$d" -depth -type d -exec rmdir {} \;
	done
	# What dockerd leaves in files: its runtime directory, the trust key
	# that 20.10 writes on its first start.
	for f in /run/docker /etc/docker/key.json; do grep -qx "$f" "$state/before/files" || rm -rf "$f"; done
	snapshot "$state/after"
	if diff -ru "$state/before" "$state/after" --exclude='*.restore'; then
		echo "docker-side: host restored (snapshots equal)"
		restored=0
	else
		echo "docker-side: THE HOST DIFFERS FROM BEFORE (above); the lock is released only now"
		restored=1
	fi
}
trap 'restore; rm -rf "$state"; [ "$restored" = 0 ] || rc=4; exit ${rc:-1}' EXIT
trap 'exit 1' INT TERM

for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
docker info >/dev/null 2>&1 || { echo "docker-side: dockerd did not answer (see /tmp/docker-side-dockerd.log)"; rc=3; exit; }
echo "$(date -u +%T) docker-side: dockerd $(docker version -f '{{.Server.Version}}') up"
(cd "$repo/e2e" && BERTH="$repo/bin/berth" "$state/e2e.test" -test.run '^$' -test.bench "$bench" \
	-test.benchtime "$benchtime" -test.timeout 30m 9>&-) | tee /tmp/docker-side.out
rc=${PIPESTATUS[0]}
restore
trap - EXIT
rm -rf "$state"
[ "$restored" = 0 ] || rc=4
echo "$(date -u +%T) docker-side: done rc=$rc"
exit "$rc"
