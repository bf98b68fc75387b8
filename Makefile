# Berth's targets. Everything builds with cgo and the seccomp tag: the
# embedded runtime needs libseccomp to install Docker's default profile.
GO        ?= go
TAGS      := seccomp,netgo,osusergo
export GOFLAGS := -tags=$(TAGS)
BIN       := bin/berth
LDFLAGS   := -s -w -extldflags -static
BENCH     ?= .

.DEFAULT_GOAL := help

.PHONY: help build test test-unit test-e2e bench demo lint fuzz clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

# The lean helper (shims, container init, DNS server) and the front path
# (ps and a no-op up -d) are built first and embedded in berth (tag
# berth_helper), under one sum of both; see docs/architecture.md.
HELPER    := cmd/berth/berth-helper
FRONT     := cmd/berth/berth-front

build: ## build bin/berth (static, cgo, seccomp), carrying the lean helper and the front
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(HELPER) ./cmd/berth-helper
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(FRONT) ./cmd/berth-front
	cat $(HELPER) $(FRONT) | sha256sum > $(HELPER).sum
	printf '#define BERTH_HELPER_DIR "%s"\n' $$(cut -c1-16 $(HELPER).sum) > $(HELPER).h
	$(GO) build -tags $(TAGS),berth_helper -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/berth

# NET_E2E are the networking tests, run again on a dirty host: a namespace
# whose forward chains drop (iptables-nft with DOCKER-USER, iptables-legacy,
# nftables) and whose port 53 is taken (e2e/dirty_test.go).
NET_E2E := Network|DNS|Port|Hello|Replicas|Reboot

test: build ## unit tests, then e2e tests (again on a dirty host for networking) and the host-wide leak check
	$(GO) test -count=1 -timeout 20m $$($(GO) list ./... | grep -v /e2e)
	BERTH=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 30m ./e2e/
	BERTH=$(CURDIR)/$(BIN) BERTH_E2E_DIRTY=1 $(GO) test -count=1 -timeout 30m -run '$(NET_E2E)' ./e2e/

test-unit: ## tests of every package but e2e
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /e2e)

test-e2e: build ## end-to-end tests against bin/berth
	BERTH=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 30m -v ./e2e/

bench: build ## up/down timings for 3 and 20 services; ps and no-op up -d; up -d after one change, a health-gated chain; pull and unpack of a 100 MB image; builds; DNS, published ports, 100 networks; logs of 20 chatty services (BENCH=regexp picks some)
	BERTH=$(CURDIR)/$(BIN) $(GO) test -count=1 -run '^$$' -bench '$(BENCH)' -benchtime 5x -timeout 30m ./e2e/ | tee bench.out
	@awk -v h="services   up -d (median s)   down -t 1 (median s)" 'function head(){if(!shown++)printf "\n%s\n", h} /^BenchmarkUpDown/ {head(); split($$1,a,"="); sub(/-[0-9]+$$/,"",a[2]); for(i=1;i<=NF;i++){if($$i=="up-s")u=$$(i-1); if($$i=="down-s")d=$$(i-1)}; printf "%-10s %-18s %s\n", a[2], u, d}' bench.out
	@awk -v h="start cost, 20 services (median)" 'function head(){if(!shown++)printf "\n%s\n", h} /^BenchmarkStartCost/ {head(); for(i=2;i<=NF;i++) m[$$i]=$$(i-1); \
	  printf "CPU per start %s ms, shim Private_Dirty %s MiB, up -d %s s, container page faults %s\n", m["cpu-ms/start"], m["shim-MiB"], m["up-s"], m["ctr-faults"]}' bench.out
	@awk -v h="fast paths, 20 services running (median ms, min-max)" 'function head(){if(!shown++)printf "\n%s\n", h} /^BenchmarkFastPath/ {head(); for(i=2;i<=NF;i++) m[$$i]=$$(i-1); \
	  printf "ps           %s (%s-%s)\nno-op up -d  %s (%s-%s)\n", m["ps-ms"], m["ps-min-ms"], m["ps-max-ms"], \
	  m["noop-up-ms"], m["noop-up-min-ms"], m["noop-up-max-ms"]}' bench.out
	@awk -v h="pull of 5 layers, 100 MB (median s, min-max)" 'function head(){if(!shown++)printf "\n%s\n", h} /^BenchmarkPull/ {head(); for(i=2;i<=NF;i++) m[$$i]=$$(i-1); \
	  printf "berth cold   %s (%s-%s)\nberth warm   %s (%s-%s)\nskopeo copy  %s (%s-%s)\nunpack       %s MB/s, tar -xzf %s MB/s\n", \
	  m["cold-s"], m["cold-min-s"], m["cold-max-s"], m["warm-s"], m["warm-min-s"], m["warm-max-s"], \
	  m["skopeo-s"], m["skopeo-min-s"], m["skopeo-max-s"], m["unpack-MB/s"], m["tar-MB/s"]}' bench.out
	@awk -v h="build (median s, min-max): cold (cache pruned), fully cached rebuild" 'function head(){if(!shown++)printf "\n%s\n", h} /^BenchmarkBuild\// {head(); split($$1,a,"/"); sub(/-[0-9]+$$/,"",a[2]); for(i=2;i<=NF;i++) m[$$i]=$$(i-1); \
	  printf "%-18s cold %s (%s-%s)   cached %s (%s-%s)\n", a[2], m["cold-s"], m["cold-min-s"], m["cold-max-s"], \
	  m["cached-s"], m["cached-min-s"], m["cached-max-s"]}' bench.out
	@awk -v h="networking (median, min-max)" 'function head(){if(!shown++)printf "\n%s\n", h} \
	  function dns(n, s){printf "DNS from a container    %-6s %s q/s (%s-%s); mean latency at 20k q/s %s ms (%s-%s); server CPU %s us/query\n", n, \
	  m[s"dns-qps"], m[s"dns-min-qps"], m[s"dns-max-qps"], m[s"at20k-ms"], m[s"at20k-min-ms"], m[s"at20k-max-ms"], m[s"server-us/query"]} \
	  /^BenchmarkDNS/ {head(); for(i=2;i<=NF;i++) m[$$i]=$$(i-1); dns("Berth", ""); if(m["docker-dns-qps"]!="") dns("Docker", "docker-")} \
	/^BenchmarkPublishedPort/ {head(); for(i=2;i<=NF;i++) m[$$i]=$$(i-1); \
	  split("v4-tcp v4-udp v6-tcp v6-udp remote-v4-tcp remote-v4-udp remote-v6-tcp remote-v6-udp", k, " "); \
	  for(j=1;j<=16;j++){d=(j>8)?"docker-":""; if(d!="" && m["docker-v4-tcp-ratio"]=="") break; k[j]=d k[(j-1)%8+1]; p=substr(k[j],length(k[j])-2); f=substr(k[j],1,length(k[j])-4); \
	  printf "%-20s published/direct  %s Gbps (%s-%s) / %s Gbps (%s-%s) = %s\n", k[j], \
	  m[f"-published-"p"-Gbps"], m[f"-published-"p"-min-Gbps"], m[f"-published-"p"-max-Gbps"], \
	  m[f"-direct-"p"-Gbps"], m[f"-direct-"p"-min-Gbps"], m[f"-direct-"p"-max-Gbps"], m[k[j]"-ratio"]}} \
	/^BenchmarkNetworkCreateRemove/ {head(); for(i=2;i<=NF;i++) m[$$i]=$$(i-1); \
	  printf "100 networks            create %s s (%s-%s), rm %s s (%s-%s)\n", \
	  m["create100-s"], m["create100-min-s"], m["create100-max-s"], m["rm100-s"], m["rm100-min-s"], m["rm100-max-s"]}' bench.out
	@awk -v h="logs of 20 chatty services, 1M lines (median lines/s, min-max)" 'function head(){if(!shown++)printf "\n%s\n", h} /^BenchmarkLogMux/ {head(); for(i=2;i<=NF;i++) m[$$i]=$$(i-1); \
	  printf "logs -f while they write  %s (%s-%s)\nlogs afterwards           %s (%s-%s)\n", \
	  m["follow-lines/s"], m["follow-min-lines/s"], m["follow-max-lines/s"], m["read-lines/s"], m["read-min-lines/s"], m["read-max-lines/s"]}' bench.out

demo: ## build, import busybox, bring up examples/hello
	bash examples/hello/demo.sh

lint: ## gofmt, go vet, staticcheck when installed
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	@command -v staticcheck >/dev/null && staticcheck ./... || echo "staticcheck not installed; skipped"

FUZZTIME ?= 20s

fuzz: ## run each fuzz target for FUZZTIME (20 s)
	$(GO) test -run '^$$' -fuzz FuzzApply -fuzztime $(FUZZTIME) ./engine/image/
	$(GO) test -run '^$$' -fuzz FuzzNormalize -fuzztime $(FUZZTIME) ./engine/image/
	$(GO) test -run '^$$' -fuzz FuzzLoad -fuzztime $(FUZZTIME) ./engine/image/
	$(GO) test -run '^$$' -fuzz FuzzResolvConf -fuzztime $(FUZZTIME) ./netdns/
	$(GO) test -run '^$$' -fuzz FuzzHandler -fuzztime $(FUZZTIME) ./netdns/
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME) ./engine/build/

clean: ## remove build outputs
	rm -rf bin bench.out $(HELPER) $(HELPER).sum $(HELPER).h $(FRONT)
