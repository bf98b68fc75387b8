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
	tests := []struct {
		name string
		ns   string
		host string
		want string
	}{
		{
			name: "empty host file",
			ns:   "10.89.3.1",
			want: "nameserver 10.89.3.1\n",
		},
		{
			name: "host nameservers dropped, search and options kept",
			ns:   "10.89.3.1",
			host: "# generated\nnameserver 127.0.0.53\nnameserver 8.8.8.8\nsearch corp.example  lan\noptions edns0 trust-ad\n",
			want: "nameserver 10.89.3.1\nsearch corp.example lan\noptions edns0 trust-ad\n",
		},
		{
			name: "domain kept, junk and comments dropped",
			ns:   "172.30.0.1",
			host: "domain example.org\n; comment\nsortlist 130.155.160.0\n  options ndots:2  \nsearch\n",
			want: "nameserver 172.30.0.1\ndomain example.org\noptions ndots:2\n",
		},
		{
			name: "ipv6 gateway",
			ns:   "fd00:89::1",
			host: "nameserver ::1\n",
			want: "nameserver fd00:89::1\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := string(ResolvConf(netip.MustParseAddr(tc.ns), []byte(tc.host)))
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
		out := string(ResolvConf(netip.MustParseAddr("10.0.0.1"), host))
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if lines[0] != "nameserver 10.0.0.1" {
			t.Fatalf("first line %q", lines[0])
		}
		for _, l := range lines[1:] {
			f := strings.Fields(l)
			if len(f) < 2 || !slices.Contains([]string{"search", "domain", "options"}, f[0]) {
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
	tests := []struct {
		name     string
		ip       netip.Addr
		hostname string
		extra    []string
		want     string
	}{
		{name: "own name", ip: netip.MustParseAddr("10.89.3.2"), hostname: "abc123def456", want: loopback + "10.89.3.2\tabc123def456\n"},
		{name: "extra names deduplicated", ip: netip.MustParseAddr("10.89.3.2"), hostname: "web", extra: []string{"demo-web-1", "web", "", "bad name"}, want: loopback + "10.89.3.2\tweb demo-web-1\n"},
		{name: "no network", hostname: "web", want: loopback},
		{name: "no names", ip: netip.MustParseAddr("10.89.3.2"), want: loopback},
		{name: "ipv6", ip: netip.MustParseAddr("fd00::2"), hostname: "web", want: loopback + "fd00::2\tweb\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := string(Hosts(tc.ip, tc.hostname, tc.extra...)); got != tc.want {
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
