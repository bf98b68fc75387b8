// Package busybox writes a busybox root filesystem tarball made from
// Debian's busybox-static: the image the demo, e2e tests and benchmarks use.
package busybox

import (
	"archive/tar"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// WriteTar writes the tarball to path.
func WriteTar(path string) error {
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return fmt.Errorf("%w (apt-get install busybox-static)", err)
	}
	list, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	now := time.Now()
	hdr := func(h *tar.Header) error { h.ModTime = now; return tw.WriteHeader(h) }
	for _, d := range []string{"bin", "etc", "root", "var", "var/www", "proc", "sys", "dev"} {
		if err := hdr(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755}); err != nil {
			return err
		}
	}
	hdr(&tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777})
	hdr(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755, Size: int64(len(bb))})
	tw.Write(bb)
	for _, a := range strings.Fields(string(list)) {
		if a != "busybox" {
			hdr(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777})
		}
	}
	hdr(&tar.Header{Typeflag: tar.TypeSymlink, Name: "sbin", Linkname: "bin", Mode: 0o777})
	for name, body := range map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
		"etc/group":  "root:x:0:\nnogroup:x:65534:\n",
	} {
		hdr(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body))})
		tw.Write([]byte(body))
	}
	return tw.Close()
}
