package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// registry is Debian's docker-registry (the CNCF distribution registry)
// serving on a loopback port for one test.
type registry struct {
	host      string // 127.0.0.1:PORT
	user, pw  string // set with auth
	certsDir  string // set with TLS: <dir>/<host>/ca.crt, Docker's layout
	skopeoTLS []string
}

type registryOpts struct{ auth, tls bool }

const registryBin = "/usr/bin/docker-registry"

func needRegistryTools(t testing.TB) {
	t.Helper()
	for _, p := range []string{registryBin, "/usr/bin/skopeo", "/usr/bin/htpasswd"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("needs %s (apt-get install docker-registry skopeo apache2-utils; .ci/run does)", p)
		}
	}
}

// startRegistry runs a registry until the test ends; its storage lives in
// the test's directory.
func startRegistry(t testing.TB, o registryOpts) *registry {
	t.Helper()
	needRegistryTools(t)
	dir := t.TempDir()
	port := freePort(t)
	r := &registry{host: fmt.Sprintf("127.0.0.1:%d", port)}
	cfg := fmt.Sprintf(`version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: %s}
  delete: {enabled: true}
http:
  addr: %s
`, filepath.Join(dir, "data"), r.host)
	if o.tls {
		ca, cert, key := makeCerts(t, dir)
		cfg += fmt.Sprintf("  tls: {certificate: %s, key: %s}\n", cert, key)
		r.certsDir = filepath.Join(dir, "certs.d")
		hostDir := filepath.Join(r.certsDir, r.host)
		os.MkdirAll(hostDir, 0o755)
		if err := os.WriteFile(filepath.Join(hostDir, "ca.crt"), ca, 0o644); err != nil {
			t.Fatal(err)
		}
		r.skopeoTLS = []string{"--cert-dir", hostDir}
	} else {
		r.skopeoTLS = []string{"--tls-verify=false"}
	}
	if o.auth {
		r.user, r.pw = "berth", "s3cret-pw"
		htp := filepath.Join(dir, "htpasswd")
		out, err := exec.Command("htpasswd", "-Bbn", r.user, r.pw).Output()
		if err != nil {
			t.Fatalf("htpasswd: %v", err)
		}
		if err := os.WriteFile(htp, out, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg += fmt.Sprintf("auth:\n  htpasswd: {realm: berth-e2e, path: %s}\n", htp)
	}
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(registryBin, "serve", cfgPath)
	logf, _ := os.Create(filepath.Join(dir, "registry.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("registry log:\n%s", b)
		}
	})
	// Ready when /v2/ answers (401 with auth).
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{
		Proxy: nil, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	scheme := "http"
	if o.tls {
		scheme = "https"
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get(scheme + "://" + r.host + "/v2/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry did not come up: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return r
}

// makeCerts writes a CA and a server certificate for 127.0.0.1 signed by
// it; it returns the CA's PEM and the server's certificate and key paths.
func makeCerts(t testing.TB, dir string) ([]byte, string, string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "berth e2e CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certPath, keyPath := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), certPath, keyPath
}

// skopeo runs skopeo against the registry (credentials and trust as the
// registry needs) and returns its output.
func (r *registry) skopeo(t *testing.T, args ...string) string {
	t.Helper()
	full := append([]string{args[0]}, r.skopeoTLS...)
	if r.user != "" {
		full = append(full, "--creds", r.user+":"+r.pw)
	}
	full = append(full, args[1:]...)
	out, err := exec.Command("skopeo", full...).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo %v: %v\n%s", full, err, out)
	}
	return string(out)
}

type skopeoInfo struct {
	Digest string
	Layers []string
}

func inspectJSON(t *testing.T, out string) skopeoInfo {
	t.Helper()
	var i skopeoInfo
	if err := json.Unmarshal([]byte(out), &i); err != nil {
		t.Fatalf("skopeo inspect: %v\n%s", err, out)
	}
	return i
}

// configure points Berth (and its docker configuration) at the registry:
// its CA, and a fresh credentials file.
func (r *registry) configure(t testing.TB) {
	t.Helper()
	dir := t.TempDir()
	cfg := map[string]any{}
	if r.certsDir != "" {
		cfg["certs-dir"] = r.certsDir
	}
	b, _ := json.Marshal(cfg)
	os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600)
	t.Setenv("BERTH_CONFIG", filepath.Join(dir, "config.json"))
	t.Setenv("DOCKER_CONFIG", filepath.Join(dir, "docker"))
}

// TestPushPullMustKeepDigestsAgainstARealRegistry: an image pushed to,
// removed from and pulled back from Debian's docker-registry keeps the
// digest the registry (as skopeo sees it) gives it, plain, with htpasswd
// auth and with TLS from a CA the test makes.
func TestPushPullMustKeepDigestsAgainstARealRegistry(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    registryOpts
	}{{"plain", registryOpts{}}, {"auth", registryOpts{auth: true}}, {"tls", registryOpts{tls: true}}} {
		t.Run(tc.name, func(t *testing.T) {
			reg := startRegistry(t, tc.o)
			reg.configure(t)
			e := newEnv(t)
			ref := reg.host + "/e2e/busybox:1"
			e.must("image", "tag", "busybox", ref)
			if tc.o.auth {
				r := e.berth("image", "push", ref)
				if r.code == 0 || !strings.Contains(r.stderr, "access denied") {
					t.Fatalf("push without login: %+v", r)
				}
				bad := e.cmdIn("wrong\n", "login", "-u", reg.user, "--password-stdin", reg.host)
				if bad.code == 0 || !strings.Contains(bad.stderr, "wrong username or password") {
					t.Fatalf("login with a wrong password: %+v", bad)
				}
				if r := e.cmdIn(reg.pw+"\n", "login", "-u", reg.user, "--password-stdin", reg.host); r.code != 0 || !strings.Contains(r.stdout, "Login Succeeded") {
					t.Fatalf("login: %+v", r)
				}
			}
			push := e.must("--progress", "plain", "image", "push", ref)
			digest := strings.TrimSpace(push.stdout[strings.LastIndex(push.stdout, "digest: ")+len("digest: "):])
			if !strings.Contains(push.stderr, "Pushed") {
				t.Errorf("push progress:\n%s", push.stderr)
			}
			if got := inspectJSON(t, reg.skopeo(t, "inspect", "docker://"+ref)).Digest; got != digest {
				t.Fatalf("registry has %s, berth pushed %s", got, digest)
			}

			// Gone here, pulled back: same digest, shown by ls and inspect.
			e.must("image", "rm", ref)
			e.must("image", "rm", "busybox")
			e.must("image", "prune", "-a")
			if ls := e.must("image", "ls", "-q").stdout; strings.TrimSpace(ls) != "" {
				t.Fatalf("images left: %s", ls)
			}
			pull := e.must("--progress", "plain", "image", "pull", ref)
			if !strings.Contains(pull.stderr, "Pull complete") || !strings.Contains(pull.stderr, "Pulled") {
				t.Errorf("pull progress:\n%s", pull.stderr)
			}
			if ls := e.must("image", "ls", "--digests").stdout; !strings.Contains(ls, digest) {
				t.Errorf("image ls --digests lacks %s:\n%s", digest, ls)
			}
			if rd := e.must("image", "inspect", "--format", "{{json .RepoDigests}}", ref).stdout; !strings.Contains(rd, reg.host+"/e2e/busybox@"+digest) {
				t.Errorf("RepoDigests = %s", rd)
			}
			// Pulled again by digest: nothing to fetch.
			again := e.must("--progress", "plain", "image", "pull", reg.host+"/e2e/busybox@"+digest)
			if !strings.Contains(again.stderr, "Already exists") {
				t.Errorf("second pull:\n%s", again.stderr)
			}
			// Pushed to another repository of the same registry: the
			// registry links the blobs it has (a cross-repository mount),
			// no layer is sent again, and the digest stays.
			layers := inspectJSON(t, reg.skopeo(t, "inspect", "docker://"+ref)).Layers
			copyRef := reg.host + "/e2e/copy:1"
			e.must("image", "tag", ref, copyRef)
			cp := e.must("--progress", "plain", "image", "push", copyRef)
			if n := strings.Count(cp.stderr, "Layer already exists"); n != len(layers) || !strings.Contains(cp.stdout, "digest: "+digest) {
				t.Errorf("push to a second repository: %d of %d layers mounted, want all; stdout %q\n%s", n, len(layers), cp.stdout, cp.stderr)
			}
			if got := inspectJSON(t, reg.skopeo(t, "inspect", "docker://"+copyRef)).Digest; got != digest {
				t.Errorf("mounted copy has digest %s, want %s", got, digest)
			}
			if tc.o.auth {
				e.must("logout", reg.host)
				if r := e.berth("image", "pull", ref); r.code == 0 || !strings.Contains(r.stderr, "access denied") {
					t.Errorf("pull after logout: %+v", r)
				}
			}
		})
	}
}

// TestCredentialHelpersMustBeUsedAsDockerUsesThem: with credsStore, login
// hands the password to the helper (docker-credential-NAME on PATH) and
// config.json keeps no secret; push gets it back from the helper; logout
// erases it there. With credHelpers naming the helper for this registry
// alone, what the helper already holds is used without a login.
func TestCredentialHelpersMustBeUsedAsDockerUsesThem(t *testing.T) {
	reg := startRegistry(t, registryOpts{auth: true})
	reg.configure(t)
	bin, store := t.TempDir(), t.TempDir()
	// A helper as docker-credential-pass is one, keeping its one secret in
	// a file and logging each call.
	helper := fmt.Sprintf(`#!/bin/sh
s=%q
echo "$1" >> "$s/calls"
case "$1" in
store) cat > "$s/cred.json" ;;
get) cat > /dev/null
	if [ -f "$s/cred.json" ]; then cat "$s/cred.json"; else echo "credentials not found in native keychain"; exit 1; fi ;;
erase) cat > /dev/null; rm -f "$s/cred.json" ;;
list) echo "{}" ;;
*) exit 1 ;;
esac
`, store)
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-berthe2e"), []byte(helper), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	dockerCfg := filepath.Join(os.Getenv("DOCKER_CONFIG"), "config.json")
	writeDockerConfig := func(body string) {
		t.Helper()
		os.MkdirAll(filepath.Dir(dockerCfg), 0o700)
		if err := os.WriteFile(dockerCfg, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeDockerConfig(`{"credsStore": "berthe2e"}`)

	e := newEnv(t)
	ref := reg.host + "/e2e/busybox:1"
	e.must("image", "tag", "busybox", ref)
	if r := e.cmdIn(reg.pw+"\n", "login", "-u", reg.user, "--password-stdin", reg.host); r.code != 0 || !strings.Contains(r.stdout, "Login Succeeded") {
		t.Fatalf("login: %+v", r)
	}
	cfg, _ := os.ReadFile(dockerCfg)
	if strings.Contains(string(cfg), reg.pw) || strings.Contains(string(cfg), base64.StdEncoding.EncodeToString([]byte(reg.user+":"+reg.pw))) {
		t.Errorf("config.json holds the password:\n%s", cfg)
	}
	if cred, _ := os.ReadFile(filepath.Join(store, "cred.json")); !strings.Contains(string(cred), reg.pw) {
		t.Fatalf("the helper was not given the password: %q", cred)
	}
	e.must("image", "push", "-q", ref)
	e.must("logout", reg.host)
	if _, err := os.Stat(filepath.Join(store, "cred.json")); err == nil {
		t.Error("logout left the credentials in the helper")
	}
	if calls, _ := os.ReadFile(filepath.Join(store, "calls")); !strings.Contains(string(calls), "store\n") || !strings.Contains(string(calls), "get\n") || !strings.Contains(string(calls), "erase\n") {
		t.Errorf("helper calls:\n%s", calls)
	}
	e.must("image", "rm", ref)
	if r := e.berth("image", "pull", ref); r.code == 0 || !strings.Contains(r.stderr, "access denied") {
		t.Fatalf("pull after logout: %+v", r)
	}

	writeDockerConfig(fmt.Sprintf(`{"credHelpers": {%q: "berthe2e"}}`, reg.host))
	cred := fmt.Sprintf(`{"ServerURL": %q, "Username": %q, "Secret": %q}`, reg.host, reg.user, reg.pw)
	if err := os.WriteFile(filepath.Join(store, "cred.json"), []byte(cred), 0o600); err != nil {
		t.Fatal(err)
	}
	e.must("image", "pull", "-q", ref)
}

// TestSaveLoadMustRoundTripWithSkopeo: image save writes an archive skopeo
// reads both as docker-archive: and oci-archive:, with the stored digests,
// and image load in another root gives the same image back.
func TestSaveLoadMustRoundTripWithSkopeo(t *testing.T) {
	needRegistryTools(t)
	e := newEnv(t)
	id := strings.TrimSpace(e.must("image", "inspect", "--format", "{{.Id}}", "busybox").stdout)
	digest := strings.TrimSpace(e.must("image", "inspect", "--format", "{{.Descriptor.digest}}", "busybox").stdout)
	layers := strings.TrimSpace(e.must("image", "inspect", "--format", "{{json .RootFS.Layers}}", "busybox").stdout)
	archive := filepath.Join(t.TempDir(), "busybox.tar")
	e.must("image", "save", "-o", archive, "busybox")

	out, err := exec.Command("skopeo", "inspect", "oci-archive:"+archive+":latest").CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo inspect oci-archive: %v\n%s", err, out)
	}
	if got := inspectJSON(t, string(out)).Digest; got != digest {
		t.Errorf("oci-archive digest %s, stored %s", got, digest)
	}
	out, err = exec.Command("skopeo", "inspect", "--config", "docker-archive:"+archive).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo inspect docker-archive: %v\n%s", err, out)
	}
	var cfg struct {
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(cfg.RootFS.DiffIDs); string(b) != layers {
		t.Errorf("docker-archive layers %s, stored %s", b, layers)
	}

	other := newEnv(t)
	other.must("image", "rm", "busybox")
	load := other.must("image", "load", "-i", archive)
	if !strings.Contains(load.stdout, "Loaded image: busybox:latest") {
		t.Errorf("load:\n%s", load.stdout)
	}
	if got := strings.TrimSpace(other.must("image", "inspect", "--format", "{{.Id}} {{.Descriptor.digest}}", "busybox").stdout); got != id+" "+digest {
		t.Errorf("loaded %s, saved %s %s", got, id, digest)
	}
}

// cmdIn runs berth with stdin.
func (e *env) cmdIn(stdin string, args ...string) result {
	e.t.Helper()
	c := e.cmd(e.t.(*testing.T).Context(), args...)
	c.Stdin = strings.NewReader(stdin)
	var out, errb strings.Builder
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}
