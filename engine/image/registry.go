package image

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// DefaultCertsDir is where Docker reads per-registry certificates:
// <dir>/<host[:port]>/*.crt are CAs, *.cert with its *.key a client
// certificate.
const DefaultCertsDir = "/etc/docker/certs.d"

// Registries says how to reach registries: who we are (credentials), whom
// we trust (CAs), and which hosts may be spoken to in plain HTTP.
type Registries struct {
	// Insecure lists hosts ("host" or "host:port") that may be reached over
	// plain HTTP; loopback hosts always may, as with Docker.
	Insecure []string
	// CertsDir replaces DefaultCertsDir.
	CertsDir string
	// Keychain finds credentials; nil is the Docker configuration
	// (~/.docker/config.json or $DOCKER_CONFIG, with its credential
	// helpers).
	Keychain authn.Keychain
}

func (r *Registries) keychain() authn.Keychain {
	if r == nil || r.Keychain == nil {
		return authn.DefaultKeychain
	}
	return r.Keychain
}

// transport returns the HTTP transport for one registry host.
func (r *Registries) transport(host string) (http.RoundTripper, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	dir := DefaultCertsDir
	var insecure []string
	if r != nil {
		insecure = r.Insecure
		if r.CertsDir != "" {
			dir = r.CertsDir
		}
	}
	tc, err := tlsConfig(filepath.Join(dir, host))
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", host, err)
	}
	t.TLSClientConfig = tc
	return plainGuard{inner: t, insecure: insecure}, nil
}

// plainAllowed says whether host may be spoken to in plain HTTP.
func (r *Registries) plainAllowed(host string) bool {
	g := plainGuard{}
	if r != nil {
		g.insecure = r.Insecure
	}
	return g.plainAllowed(host)
}

// tlsConfig reads a certs.d directory the way Docker does; a missing
// directory means the system roots alone.
func tlsConfig(dir string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return tc, nil
	}
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		switch {
		case strings.HasSuffix(e.Name(), ".crt"):
			if tc.RootCAs == nil {
				if tc.RootCAs, err = x509.SystemCertPool(); err != nil {
					tc.RootCAs = x509.NewCertPool()
				}
			}
			pem, err := os.ReadFile(p)
			if err != nil {
				return nil, err
			}
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("%s: no certificate in it: %w", p, errdefs.ErrInvalidArgument)
			}
		case strings.HasSuffix(e.Name(), ".cert"):
			key := strings.TrimSuffix(p, ".cert") + ".key"
			c, err := tls.LoadX509KeyPair(p, key)
			if err != nil {
				return nil, fmt.Errorf("client certificate %s: %v: %w", p, err, errdefs.ErrInvalidArgument)
			}
			tc.Certificates = append(tc.Certificates, c)
		}
	}
	return tc, nil
}

// plainGuard refuses plain HTTP to any host but loopback and the insecure
// list: go-containerregistry would also fall back to it for private
// addresses, which Docker does not.
type plainGuard struct {
	inner    http.RoundTripper
	insecure []string
}

func (g plainGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !g.plainAllowed(req.URL.Host) {
		return nil, fmt.Errorf("registry %s: plain HTTP is allowed only to loopback registries and those listed in insecure-registries: %w", req.URL.Host, errdefs.ErrPermissionDenied)
	}
	return g.inner.RoundTrip(req)
}

func (g plainGuard) plainAllowed(hostport string) bool {
	if slices.Contains(g.insecure, hostport) {
		return true
	}
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if slices.Contains(g.insecure, host) || host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// registryError gives an error from a registry exchange its class and a
// sentence a user can act on.
func registryError(ref string, err error) error {
	var te *transport.Error
	if errors.As(err, &te) {
		for _, d := range te.Errors {
			switch d.Code {
			case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode:
				return fmt.Errorf("image %q: not found in its registry (%s): %w", ref, d.Message, errdefs.ErrNotFound)
			case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
				return fmt.Errorf("image %q: access denied: wrong credentials, or none (berth login): %s: %w", ref, d.Message, errdefs.ErrPermissionDenied)
			}
		}
		switch te.StatusCode {
		case http.StatusNotFound:
			return fmt.Errorf("image %q: not found in its registry: %w", ref, errdefs.ErrNotFound)
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("image %q: access denied: wrong credentials, or none (berth login): %w", ref, errdefs.ErrPermissionDenied)
		}
		return fmt.Errorf("image %q: registry: %v: %w", ref, err, errdefs.ErrUnavailable)
	}
	if errors.Is(err, errdefs.ErrPermissionDenied) {
		return fmt.Errorf("image %q: %w", ref, err)
	}
	var ce *tls.CertificateVerificationError
	var ue x509.UnknownAuthorityError
	if errors.As(err, &ce) || errors.As(err, &ue) {
		return fmt.Errorf("image %q: registry certificate not trusted (put its CA in %s/<host>/ca.crt): %v: %w", ref, DefaultCertsDir, err, errdefs.ErrPermissionDenied)
	}
	// Every error of the HTTP client is a net.Error (url.Error): a registry
	// that is down, refuses, or times out.
	var ne net.Error
	if errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &ne) {
		return fmt.Errorf("image %q: registry unreachable: %v: %w", ref, err, errdefs.ErrUnavailable)
	}
	return fmt.Errorf("image %q: %w", ref, err)
}
