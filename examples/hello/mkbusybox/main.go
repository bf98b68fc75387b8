// Command mkbusybox writes a busybox root filesystem tarball, made from
// Debian's busybox-static, for berth image import.
package main

import (
	"fmt"
	"os"

	"github.com/berth-dev/berth/internal/busybox"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: mkbusybox OUT.tar")
		os.Exit(2)
	}
	if err := busybox.WriteTar(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "mkbusybox:", err)
		os.Exit(1)
	}
}
