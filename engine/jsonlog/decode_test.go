package jsonlog

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"
)

// decode gives what encoding/json gives, on lines Write makes from any
// text and on lines it does not make (other key orders, escapes, broken
// ones).
func TestDecodeAgreesWithEncodingJSON(t *testing.T) {
	lines := []string{
		`{"log":"plain\n","stream":"stdout","time":"2026-11-26T03:04:05.123456789Z"}`,
		`{"log":"tab\tquote\"back\\slash \u003chtml\u0026\u003e \u0001","stream":"stderr","time":"2026-11-26T03:04:05Z"}` + "\n",
		`{"log":"é ünï 日本 \ud83d\ude00","stream":"stdout","time":"2026-11-26T03:04:05+01:00"}`,
		`{"log":"x","stream":"std\"out","time":"2026-11-26T03:04:05Z"}`,
		`{"stream":"stdout","log":"other order\n","time":"2026-11-26T03:04:05Z"}`,
		`{"log":"attrs","stream":"stdout","attrs":{"a":"b"},"time":"2026-11-26T03:04:05Z"}`,
		`{"log":"bad time","stream":"stdout","time":"2026-11-26 03:04:05"}`,
		`{"log":"hour 24","stream":"stdout","time":"2026-11-26T24:04:05Z"}`,
		`{"log":"cut short","stream":"std`,
		`{"log":"raw` + "\xff\xfe" + `","stream":"stdout","time":"2026-11-26T03:04:05Z"}`,
		`{"log":"ctl` + "\x01" + `","stream":"stdout","time":"2026-11-26T03:04:05Z"}`,
		`{"log":"trailing","stream":"stdout","time":"2026-11-26T03:04:05Z"} x`,
		`{"log":"\u2028 \/ \b","stream":"stdout","time":"2026-11-26T03:04:05Z"}`,
		`{"log":"","stream":"","time":"2026-11-26T03:04:05Z"}`,
	}
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("ab \n\t\r\"\\/<>&\x00\x01\x1f\x7f\xc3\xa9\xff\xe2\x80\xa8")
	for range 2000 {
		text := make([]byte, r.IntN(40))
		for i := range text {
			text[i] = alphabet[r.IntN(len(alphabet))]
		}
		b, err := json.Marshal(Entry{Log: string(text), Stream: "stdout", Time: time.Unix(r.Int64N(2e9), r.Int64N(1e9))})
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, string(b)+"\n")
	}
	for _, l := range lines {
		var want, got Entry
		wantErr := json.Unmarshal([]byte(l), &want)
		gotErr := decode([]byte(l), &got)
		if (wantErr != nil) != (gotErr != nil) || wantErr == nil && (got.Log != want.Log || got.Stream != want.Stream || !got.Time.Equal(want.Time)) {
			t.Errorf("%q:\n got %+v %v\nwant %+v %v", l, got, gotErr, want, wantErr)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	line := []byte(`{"log":"chatter-chatter-chatter-chatter-chatter-01\n","stream":"stdout","time":"2026-11-26T03:04:05.123456789Z"}`)
	var e Entry
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			decode(line, &e)
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			json.Unmarshal(line, &e)
		}
	})
}
