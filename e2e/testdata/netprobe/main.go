// Command netprobe is a UDP echo server and client for the e2e tests, run
// inside containers (busybox has no UDP client or server).
//
//	netprobe udp-serve PORT          echo every datagram back
//	netprobe udp-send HOST:PORT MSG  send MSG, print the reply; exit 1 when
//	                                 none comes within two seconds
package main

import (
	"fmt"
	"net"
	"os"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: netprobe udp-serve PORT | udp-send HOST:PORT MSG")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "udp-serve":
		pc, err := net.ListenPacket("udp", ":"+os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				os.Exit(1)
			}
			pc.WriteTo(buf[:n], from)
		}
	case "udp-send":
		if len(os.Args) < 4 {
			os.Exit(2)
		}
		c, err := net.Dial("udp", os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte(os.Args[3])); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		buf := make([]byte, 65536)
		n, err := c.Read(buf)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(string(buf[:n]))
	default:
		os.Exit(2)
	}
}
