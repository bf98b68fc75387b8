package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// kubeServer is a real Kubernetes API server (kube-apiserver on etcd, both
// on loopback, no controllers or nodes) and the kubectl that talks to it.
type kubeServer struct {
	kubectl    string
	kubeconfig string
}

// startKubeServer starts etcd and kube-apiserver for one test and stops
// them at its end. The binaries come from $BERTH_KUBE_BIN (built by
// .ci/kube-tools) and Debian's etcd-server; without them the test is
// skipped, except in CI, where it fails.
func startKubeServer(t *testing.T) *kubeServer {
	t.Helper()
	bin := os.Getenv("BERTH_KUBE_BIN")
	etcd, err := exec.LookPath("etcd")
	if bin == "" || err != nil {
		msg := "needs $BERTH_KUBE_BIN (export BERTH_KUBE_BIN=$(bash .ci/kube-tools)) and etcd (apt-get install etcd-server)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	const token = "berth-e2e-token"
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	saKey := write("sa.key", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	saPub := write("sa.pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
	tokens := write("tokens.csv", []byte(token+",admin,admin,system:masters\n"))

	client, peer, secure := freePort(t), freePort(t), freePort(t)
	clientURL := fmt.Sprintf("http://127.0.0.1:%d", client)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peer)
	startDaemon(t, dir, "etcd", etcd,
		"--name", "e2e", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "e2e="+peerURL)
	startDaemon(t, dir, "kube-apiserver", filepath.Join(bin, "kube-apiserver"),
		"--etcd-servers", clientURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port", fmt.Sprint(secure), "--cert-dir", filepath.Join(dir, "certs"),
		"--endpoint-reconciler-type=none",
		"--token-auth-file", tokens, "--authorization-mode=AlwaysAllow",
		"--service-account-key-file", saPub, "--service-account-signing-key-file", saKey,
		"--service-account-issuer", "https://kubernetes.default.svc",
		// As kubeadm and most clusters do; Compose's privileged: true
		// converts to privileged containers.
		"--allow-privileged=true")

	k := &kubeServer{kubectl: filepath.Join(bin, "kubectl"), kubeconfig: write("kubeconfig", fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster: {server: "https://127.0.0.1:%d", insecure-skip-tls-verify: true}
users:
- name: admin
  user: {token: %s}
contexts:
- name: e2e
  context: {cluster: e2e, user: admin}
current-context: e2e
`, secure, token))}
	// The server takes about 2 s to create its built-in objects; there is
	// no event to wait on from outside, so ask /readyz.
	eventually(t, 90*time.Second, func() error {
		_, stderr, err := k.run(nil, "get", "--raw", "/readyz")
		if err != nil {
			return fmt.Errorf("%v: %s", err, stderr)
		}
		return nil
	})
	return k
}

// startDaemon runs a server for the rest of the test, logging to
// dir/<name>.log (printed when the test fails), and kills it at the end.
func startDaemon(t *testing.T, dir, name, path string, args ...string) {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = log, log
	// Dies with the test binary, whatever happens to it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		log.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			t.Logf("%s log (tail):\n%s", name, b)
		}
	})
}

// run runs kubectl with stdin.
func (k *kubeServer) run(stdin []byte, args ...string) (string, string, error) {
	cmd := exec.Command(k.kubectl, append([]string{"--kubeconfig", k.kubeconfig}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func (k *kubeServer) must(t *testing.T, stdin []byte, args ...string) string {
	t.Helper()
	out, stderr, err := k.run(stdin, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
	}
	return out
}

// convert runs berth convert and returns the manifests.
func convert(t *testing.T, env []string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(berthBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("berth %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.Bytes()
}

// TestConvertedExamplesMustBeAcceptedByAnAPIServer converts every example,
// and the test project that sets every key the conversion maps, and has a
// real API server validate each object (kubectl apply --dry-run=server) in
// a fresh namespace; a broken object must be refused.
func TestConvertedExamplesMustBeAcceptedByAnAPIServer(t *testing.T) {
	k := startKubeServer(t)
	files, err := filepath.Glob("../examples/*/compose.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	files = append(files, "../compose/kube/testdata/full/compose.yaml")
	for _, f := range files {
		name := filepath.Base(filepath.Dir(f))
		t.Run(name, func(t *testing.T) {
			ns := "e2e-" + name
			k.must(t, nil, "create", "namespace", ns)
			out := convert(t, []string{"API_KEY=k3y"}, "-f", f, "convert", "-n", ns)
			objects := bytes.Count(out, []byte("\n---\n")) + 1
			applied := k.must(t, out, "apply", "--dry-run=server", "-f", "-")
			if n := strings.Count(applied, "(server dry run)"); n != objects {
				t.Errorf("the server took %d of %d objects:\n%s", n, objects, applied)
			}
		})
	}

	t.Run("directory output", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "k8s")
		convert(t, []string{"API_KEY=k3y"}, "-f", "../compose/kube/testdata/full/compose.yaml", "convert", "--format", "json", "-o", dir)
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		k.must(t, nil, "create", "namespace", "e2e-dir")
		applied := k.must(t, nil, "apply", "--dry-run=server", "-n", "e2e-dir", "-f", dir)
		// Every file but the marker is one object.
		if n := strings.Count(applied, "(server dry run)"); n != len(entries)-1 {
			t.Errorf("the server took %d objects from %d files:\n%s", n, len(entries)-1, applied)
		}
	})

	t.Run("broken object is refused", func(t *testing.T) {
		k.must(t, nil, "create", "namespace", "e2e-broken")
		out := convert(t, nil, "-f", "../examples/hello/compose.yaml", "convert", "-n", "e2e-broken")
		broken := bytes.Replace(out, []byte("containerPort: 80\n"), []byte("containerPort: 70000\n"), 1)
		if bytes.Equal(broken, out) {
			t.Fatal("found no containerPort to break")
		}
		_, stderr, err := k.run(broken, "apply", "--dry-run=server", "-f", "-")
		if err == nil || !strings.Contains(stderr, "containerPort") || !strings.Contains(stderr, "70000") {
			t.Errorf("a container port of 70000 was not refused: err %v\n%s", err, stderr)
		}
	})
}
