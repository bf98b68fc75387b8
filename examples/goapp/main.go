// Command goapp is a small HTTP service: it answers with a greeting from
// /static/greeting.txt and a quote it fetches from the quotes service by
// its name on the project's network.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strings"
	"time"
)

var version = "dev"

func main() {
	check := flag.Bool("check", false, "probe the running service and exit (the healthcheck)")
	flag.Parse()
	if *check {
		resp, err := http.Get("http://127.0.0.1:8080/healthz")
		if err != nil || resp.StatusCode != http.StatusOK {
			os.Exit(1)
		}
		return
	}
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		greeting, err := os.ReadFile("/static/greeting.txt")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%s (version %s)\nquote: %s\n", strings.TrimSpace(string(greeting)), version, quote())
	})
	log.Printf("goapp %s listening on :8080", version)
	log.Fatal(http.ListenAndServe(":8080", nil))
}

// quote fetches a quote from the quotes service.
func quote() string {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(os.Getenv("QUOTES_URL"))
	if err != nil {
		return "unavailable: " + err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	return strings.TrimSpace(string(b))
}
