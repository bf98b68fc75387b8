package image

import (
	"errors"
	"net/http"
	"testing"

	"github.com/containerd/errdefs"
)

// failTransport fails every request it is handed, so a test can tell
// whether the guard let one through without sending anything anywhere.
type failTransport struct{}

var errSent = errors.New("sent")

func (failTransport) RoundTrip(*http.Request) (*http.Response, error) { return nil, errSent }

func TestPlainHTTPOnlyToLoopbackAndInsecure(t *testing.T) {
	t.Parallel()
	g := plainGuard{inner: failTransport{}, insecure: []string{"registry.lan:5000", "build.lan"}}
	tests := []struct {
		url  string
		sent bool
	}{
		{"http://127.0.0.1:5000/v2/", true},
		{"http://127.8.9.10/v2/", true},
		{"http://[::1]:5000/v2/", true},
		{"http://localhost:5000/v2/", true},
		{"http://registry.lan:5000/v2/", true},
		{"http://build.lan:443/v2/", true},
		{"http://registry.lan:5001/v2/", false},
		{"http://10.0.0.1:5000/v2/", false},
		{"http://192.168.1.2/v2/", false},
		{"http://example.com/v2/", false},
		{"https://example.com/v2/", true}, // TLS is never refused here
	}
	for _, tt := range tests {
		req, err := http.NewRequest(http.MethodGet, tt.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = g.RoundTrip(req)
		if sent := errors.Is(err, errSent); sent != tt.sent {
			t.Errorf("%s: sent = %v, want %v (%v)", tt.url, sent, tt.sent, err)
		}
		if !tt.sent && !errors.Is(err, errdefs.ErrPermissionDenied) {
			t.Errorf("%s: refused with %v, want PermissionDenied", tt.url, err)
		}
	}
}
