package netdns

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestNoUpstreamsNeverForwards: with forwarding off, unknown names get
// SERVFAIL and not one query reaches an upstream.
func TestNoUpstreamsNeverForwards(t *testing.T) {
	t.Parallel()
	ip := loopbackNet(t)
	dir := t.TempDir()
	if err := WriteRecords(t.Context(), dir, testRecords(ip)); err != nil {
		t.Fatal(err)
	}
	_, hits := fakeUpstream(t)
	startServe(t, Config{Dir: dir, Port: testPort, Upstreams: []string{NoUpstreams}})
	waitLoaded(t, dir, 1)
	m, err := query(ip(2), ip(1), "udp", "elsewhere.test", dns.TypeA)
	if err != nil {
		t.Fatal(err)
	}
	if m.Rcode != dns.RcodeServerFailure || hits.Load() != 0 {
		t.Fatalf("rcode %s, upstream hits %d", dns.RcodeToString[m.Rcode], hits.Load())
	}
	if m, err := query(ip(2), ip(1), "udp", "web", dns.TypeA); err != nil || len(m.Answer) != 2 {
		t.Fatalf("local names must still answer: %v %v", m, err)
	}
}

// TestUpdateReloadsWithoutSpawning: Update publishes removals to a running
// server and never starts one.
func TestUpdateReloadsWithoutSpawning(t *testing.T) {
	t.Parallel()
	ip := loopbackNet(t)
	dir := t.TempDir()
	full := testRecords(ip)
	if err := WriteRecords(t.Context(), dir, full); err != nil {
		t.Fatal(err)
	}
	startServe(t, Config{Dir: dir, Port: testPort, Upstreams: []string{NoUpstreams}})
	waitLoaded(t, dir, 1)
	less := Records{Networks: []Network{full.Networks[0]}}
	less.Networks[0].Endpoints = less.Networks[0].Endpoints[:1] // web2 and the client gone
	if err := Update(t.Context(), dir, less); err != nil {
		t.Fatal(err)
	}
	waitLoaded(t, dir, 2)
	m, err := query(ip(2), ip(1), "udp", "web", dns.TypeA)
	if err != nil || len(m.Answer) != 1 {
		t.Fatalf("after update: %v %v", m, err)
	}

	// With no server at all, Update only writes.
	empty := t.TempDir()
	if err := Update(t.Context(), empty, less); err != nil {
		t.Fatal(err)
	}
	if r, err := ReadRecords(empty); err != nil || len(r.Networks) != 1 {
		t.Fatalf("records %v %v", r, err)
	}
	if fileExists(filepath.Join(empty, pidFile)) {
		t.Fatal("Update started a server")
	}
}

// TestStopLeavesANeededServerAlone: Stop signals nothing while the records
// still have networks, nor when no server runs.
func TestStopLeavesANeededServerAlone(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ip := loopbackNet(t)
	if err := WriteRecords(t.Context(), dir, testRecords(ip)); err != nil {
		t.Fatal(err)
	}
	// A pid file naming this very process: a Stop that signalled it would
	// kill the test binary.
	if err := os.WriteFile(filepath.Join(dir, pidFile), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Stop(t.Context(), dir); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // we are still here
	if err := Stop(t.Context(), t.TempDir()); err != nil {
		t.Fatalf("stop with no server: %v", err)
	}
}
