package jsonlog

import (
	"bytes"
	"encoding/json"
	"time"
	"unicode/utf8"
)

// decode reads one line of the log. Lines as Write makes them (and as
// Docker does: {"log":"...","stream":"...","time":"..."}) take a path of
// their own, several times faster than encoding/json's reflection; any
// other line (other key order, rare escapes) goes through encoding/json,
// so both give the same entry.
func decode(line []byte, e *Entry) error {
	if decodeFast(line, e) {
		return nil
	}
	*e = Entry{}
	return json.Unmarshal(line, e)
}

var (
	keyLog    = []byte(`{"log":"`)
	keyStream = []byte(`,"stream":"`)
	keyTime   = []byte(`,"time":"`)
)

func decodeFast(line []byte, e *Entry) bool {
	rest, ok := bytes.CutPrefix(line, keyLog)
	if !ok {
		return false
	}
	log, rest, ok := jsonString(rest)
	if !ok {
		return false
	}
	if rest, ok = bytes.CutPrefix(rest, keyStream); !ok {
		return false
	}
	var stream string
	switch end := bytes.IndexByte(rest, '"'); {
	case end < 0:
		return false
	case string(rest[:end]) == "stdout": // the two there are, without a copy each
		stream, rest = "stdout", rest[end+1:]
	case string(rest[:end]) == "stderr":
		stream, rest = "stderr", rest[end+1:]
	default:
		if stream, rest, ok = jsonString(rest); !ok {
			return false
		}
	}
	if rest, ok = bytes.CutPrefix(rest, keyTime); !ok {
		return false
	}
	end := bytes.IndexByte(rest, '"')
	if end < 0 || string(bytes.TrimRight(rest[end+1:], " \t\r\n")) != "}" {
		return false
	}
	var t time.Time
	if t.UnmarshalText(rest[:end]) != nil {
		return false
	}
	e.Log, e.Stream, e.Time = log, stream, t
	return true
}

// jsonString reads a JSON string's body up to its closing quote, which it
// consumes. It knows the escapes json.Marshal writes for log text (\n,
// \t, \r, \", \\ and \u00XX below 0x80); with another one, or bytes that
// are not UTF-8, it says no and the caller falls back.
func jsonString(b []byte) (string, []byte, bool) {
	for i, c := range b {
		if c == '"' {
			// No escape: the text as it stands.
			if !utf8.Valid(b[:i]) {
				return "", nil, false
			}
			return string(b[:i]), b[i+1:], true
		}
		if c == '\\' || c < 0x20 {
			break
		}
	}
	var scratch [512]byte // on the stack: most lines fit
	out := scratch[:0]
	for j := 0; j < len(b); j++ {
		c := b[j]
		switch {
		case c == '"':
			if !utf8.Valid(out) {
				return "", nil, false
			}
			return string(out), b[j+1:], true
		case c < 0x20:
			return "", nil, false // invalid JSON: let encoding/json say so
		case c != '\\':
			out = append(out, c)
			continue
		}
		if j+1 >= len(b) {
			return "", nil, false
		}
		j++
		switch b[j] {
		case 'n':
			out = append(out, '\n')
		case 't':
			out = append(out, '\t')
		case 'r':
			out = append(out, '\r')
		case '"', '\\', '/':
			out = append(out, b[j])
		case 'u':
			if j+4 >= len(b) || b[j+1] != '0' || b[j+2] != '0' {
				return "", nil, false
			}
			h, l := unhex(b[j+3]), unhex(b[j+4])
			if h < 0 || l < 0 || h > 7 {
				return "", nil, false
			}
			out = append(out, byte(h<<4|l))
			j += 4
		default:
			return "", nil, false
		}
	}
	return "", nil, false
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
