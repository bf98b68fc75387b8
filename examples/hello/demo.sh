#!/usr/bin/env bash
# make demo: install what Berth needs, build it, import a busybox image made
# from Debian's busybox-static, and bring up examples/hello.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" != 0 ]; then echo "demo: run as root (berth creates namespaces, bridges and nftables rules)"; exit 1; fi
need=()
for p in libseccomp-dev pkg-config busybox-static gcc make; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
if ((${#need[@]})); then apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null; fi
export PATH=$PATH:/usr/local/go/bin
make build
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
go run ./examples/hello/mkbusybox "$tmp/busybox.tar"
./bin/berth image import "$tmp/busybox.tar" busybox >/dev/null
./bin/berth -f examples/hello/compose.yaml up -d
./bin/berth -f examples/hello/compose.yaml ps
port=${HELLO_PORT:-8080}
for _ in $(seq 50); do
  if page=$(wget -qO- "http://127.0.0.1:$port/" 2>/dev/null || busybox wget -qO- "http://127.0.0.1:$port/" 2>/dev/null); then break; fi
  sleep 0.1
done
echo "page at http://127.0.0.1:$port/: ${page:-<no answer>}"
sleep 3
./bin/berth -f examples/hello/compose.yaml logs --tail 3 client
echo
echo "Stop it with: ./bin/berth -f examples/hello/compose.yaml down"
