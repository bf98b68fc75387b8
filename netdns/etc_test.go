package netdns

import (
	"go/parser"
	"go/token"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestResolvConf(t *testing.T) {
	t.Parallel()
	const host = "# generated\nnameserver 127.0.0.53\nnameserver 8.8.8.8\nsearch corp.example  lan\noptions edns0 trust-ad ndots:2\n"
	tests := []struct {
		name     string
		host     string
		r        Resolver
		embedded bool
		want     string
	}{
		{
			name:     "empty host file",
			embedded: true,
			want:     "nameserver 127.0.0.11\noptions ndots:0\n",
		},
		{
			name:     "host nameservers dropped, search and options kept",
			host:     "# generated\nnameserver 127.0.0.53\nnameserver 8.8.8.8\nsearch corp.example  lan\noptions edns0 trust-ad\n",
			embedded: true,
			want:     "nameserver 127.0.0.11\nsearch corp.example lan\noptions edns0 trust-ad ndots:0\n",
		},
		{
			name:     "host ndots kept, domain read as search, junk dropped",
			host:     "domain example.org\n; comment\nsortlist 130.155.160.0\n  options ndots:2  \nsearch\n",
			embedded: true,
			want:     "nameserver 127.0.0.11\nsearch example.org\noptions ndots:2\n",
		},
		{
			name:     "dns_search and dns_opt replace the host's",
			host:     host,
			r:        Resolver{Search: []string{"svc.local"}, Options: []string{"ndots:1", "timeout:2"}},
			embedded: true,
			want:     "nameserver 127.0.0.11\nsearch svc.local\noptions edns0 trust-ad ndots:1 timeout:2\n",
		},
		{
			name:     "dns_search . means none",
			host:     host,
			r:        Resolver{Search: []string{"."}},
			embedded: true,
			want:     "nameserver 127.0.0.11\noptions edns0 trust-ad ndots:2\n",
		},
		{
			name: "host network keeps the host's nameservers",
			host: host,
			want: "nameserver 127.0.0.53\nnameserver 8.8.8.8\nsearch corp.example lan\noptions edns0 trust-ad ndots:2\n",
		},
		{
			name: "dns replaces them without the embedded server",
			host: host,
			r:    Resolver{Nameservers: []netip.Addr{netip.MustParseAddr("192.0.2.53"), netip.MustParseAddr("fd00::53")}},
			want: "nameserver 192.0.2.53\nnameserver fd00::53\nsearch corp.example lan\noptions edns0 trust-ad ndots:2\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := string(ResolvConf([]byte(tc.host), tc.r, tc.embedded))
			if got != tc.want {
				t.Fatalf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func FuzzResolvConf(f *testing.F) {
	f.Add([]byte("nameserver 1.1.1.1\nsearch a b\noptions ndots:5\n"))
	f.Add([]byte("search\x00\nnameserver\n"))
	f.Fuzz(func(t *testing.T, host []byte) {
		out := string(ResolvConf(host, Resolver{}, true))
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if lines[0] != "nameserver 127.0.0.11" {
			t.Fatalf("first line %q", lines[0])
		}
		for _, l := range lines[1:] {
			f := strings.Fields(l)
			if len(f) < 2 || !slices.Contains([]string{"search", "options"}, f[0]) {
				t.Fatalf("unexpected line %q", l)
			}
		}
	})
}

func TestHosts(t *testing.T) {
	t.Parallel()
	const loopback = "127.0.0.1\tlocalhost\n" +
		"::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"fe00::0\tip6-localnet\n" +
		"ff00::0\tip6-mcastprefix\n" +
		"ff02::1\tip6-allnodes\n" +
		"ff02::2\tip6-allrouters\n"
	ip := netip.MustParseAddr
	tests := []struct {
		name  string
		own   []netip.Addr
		names []string
		extra []HostsEntry
		want  string
	}{
		{name: "own name", own: []netip.Addr{ip("10.89.3.2")}, names: []string{"abc123def456"}, want: loopback + "10.89.3.2\tabc123def456\n"},
		{name: "names deduplicated", own: []netip.Addr{ip("10.89.3.2")}, names: []string{"web.example", "web", "", "bad name", "web"}, want: loopback + "10.89.3.2\tweb.example web\n"},
		{name: "no network", names: []string{"web"}, want: loopback},
		{name: "no names", own: []netip.Addr{ip("10.89.3.2")}, want: loopback},
		{name: "dual stack", own: []netip.Addr{ip("10.89.3.2"), ip("fd00::2")}, names: []string{"web"}, want: loopback + "10.89.3.2\tweb\nfd00::2\tweb\n"},
		{name: "extra hosts", own: []netip.Addr{ip("10.89.3.2")}, names: []string{"web"}, extra: []HostsEntry{{IP: ip("10.89.3.1"), Names: []string{"host.docker.internal"}}, {IP: ip("192.0.2.9"), Names: []string{"db"}}},
			want: loopback + "10.89.3.2\tweb\n10.89.3.1\thost.docker.internal\n192.0.2.9\tdb\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := string(Hosts(tc.own, tc.names, tc.extra)); got != tc.want {
				t.Fatalf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestParseResolvConf(t *testing.T) {
	t.Parallel()
	got := parseResolvConf([]byte("# x\nnameserver 127.0.0.53\nnameserver  ::1 \nnameserver bogus\nsearch x\nnameserver 10.0.0.1 # trailing\n"))
	want := []string{"127.0.0.53:53", "[::1]:53", "10.0.0.1:53"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// The DNS server is started by the engine but must not depend on it: it
// gets everything through the records file.
func TestNoEngineImport(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no sources: %v", err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if path == "github.com/berth-dev/berth/engine" || strings.HasPrefix(path, "github.com/berth-dev/berth/engine/") {
				t.Errorf("%s imports %s", name, path)
			}
		}
	}
	if _, err := os.Stat("doc.go"); err != nil {
		t.Errorf("package doc: %v", err)
	}
}
