// Package procstat reads a process's /proc/PID/stat line: its command
// name (which may itself hold spaces and parentheses) and the fields
// after it.
package procstat

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Read returns pid's command name and the fields that follow it, counted
// from 0: state(0) ppid(1) ... tty_nr(4) ... utime(11) stime(12) ...
// starttime(19).
func Read(pid int) (name string, fields []string, err error) {
	path := "/proc/" + strconv.Itoa(pid) + "/stat"
	b, err := os.ReadFile(path)
	if err != nil {
		return "", nil, err
	}
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return "", nil, fmt.Errorf("%s: unexpected format", path)
	}
	return s[open+1 : end], strings.Fields(s[end+1:]), nil
}
