package jsonlog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testdisk"
)

func writeN(t *testing.T, w *Writer, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := w.Write(Entry{Log: fmt.Sprintf("line %d\n", i), Stream: "stdout", Time: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
}

// numbers reads the log and returns the numbers of its "line N" entries.
func numbers(t *testing.T, path string, o ReadOptions) []int {
	t.Helper()
	var got []int
	err := Read(t.Context(), path, o, func(e Entry) error {
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(e.Log, "line "), "\n"))
		if err != nil {
			return fmt.Errorf("entry %q: %w", e.Log, err)
		}
		got = append(got, n)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// consecutive fails unless got is from..to-1 in order.
func consecutive(t *testing.T, got []int, from, to int) {
	t.Helper()
	if len(got) != to-from {
		t.Fatalf("got %d entries %v, want %d..%d", len(got), got, from, to-1)
	}
	for i, n := range got {
		if n != from+i {
			t.Fatalf("entry %d is line %d, want %d: %v", i, n, from+i, got)
		}
	}
}

func TestRotationKeepsMaxFileFilesInOrder(t *testing.T) {
	t.Parallel()
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprintf("compress=%v", compress), func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "c-json.log")
			const maxSize = 400
			w, err := Create(path, Options{MaxSize: maxSize, MaxFile: 3, Compress: compress})
			if err != nil {
				t.Fatal(err)
			}
			writeN(t, w, 0, 100)
			w.Close()
			ext := ""
			if compress {
				ext = ".gz"
			}
			for _, p := range []string{path, path + ".1" + ext, path + ".2" + ext} {
				st, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if st.Size() > maxSize {
					t.Errorf("%s has %d bytes, max-size is %d", p, st.Size(), maxSize)
				}
			}
			left, _ := filepath.Glob(path + ".*")
			if len(left) != 3 { // .1, .2 and the lock
				t.Errorf("files beside the log: %v", left)
			}
			all := numbers(t, path, ReadOptions{Tail: -1})
			if len(all) == 0 || all[len(all)-1] != 99 {
				t.Fatalf("read %v", all)
			}
			consecutive(t, all, 100-len(all), 100)
			consecutive(t, numbers(t, path, ReadOptions{Tail: 1000}), 100-len(all), 100)
			consecutive(t, numbers(t, path, ReadOptions{Tail: 3}), 97, 100)
			// A tail reaching into the rotated files.
			consecutive(t, numbers(t, path, ReadOptions{Tail: len(all) - 2}), 100-len(all)+2, 100)
		})
	}
}

// A follower must see every entry once, in order, while the writer
// rotates under it many times.
func TestFollowGoesOnAcrossRotations(t *testing.T) {
	t.Parallel()
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprintf("compress=%v", compress), func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "f-json.log")
			w, err := Create(path, Options{MaxSize: 300, MaxFile: 1000, Compress: compress})
			if err != nil {
				t.Fatal(err)
			}
			var done sync.WaitGroup
			var finished = make(chan struct{})
			done.Go(func() {
				defer close(finished)
				for i := range 40 {
					writeN(t, w, i*10, i*10+10)
					time.Sleep(3 * time.Millisecond)
				}
				w.Close()
			})
			got := numbers(t, path, ReadOptions{Tail: -1, Follow: true, Done: func() bool {
				select {
				case <-finished:
					return true
				default:
					return false
				}
			}})
			done.Wait()
			consecutive(t, got, 0, 400)
			rotated, _ := filepath.Glob(path + ".*")
			if len(rotated) < 10 {
				t.Fatalf("only %d rotated files", len(rotated))
			}
		})
	}
}

// max-file 1: the file starts afresh at max-size, and is never larger.
func TestSingleFileStartsAfresh(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "s-json.log")
	w, _ := Create(path, Options{MaxSize: 200, MaxFile: 1})
	writeN(t, w, 0, 50)
	w.Close()
	if st, _ := os.Stat(path); st.Size() > 200 {
		t.Fatalf("%d bytes", st.Size())
	}
	if left, _ := filepath.Glob(path + ".[0-9]*"); len(left) != 0 {
		t.Fatalf("rotated files with max-file 1: %v", left)
	}
	got := numbers(t, path, ReadOptions{Tail: -1})
	consecutive(t, got, 50-len(got), 50)
}

// A full disk: writes fail and say so once, no torn line is left, and
// writing resumes once there is room.
func TestFullDiskDropsWholeEntriesAndRecovers(t *testing.T) {
	// 16k, of which the log gets about 6k.
	dir, makeRoom := testdisk.Full(t, 16*1024, 6*1024)
	path := filepath.Join(dir, "d-json.log")
	var mu sync.Mutex
	var heard []error
	w, err := Create(path, Options{OnError: func(err error) { mu.Lock(); heard = append(heard, err); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	// Long entries, so one is cut short when the disk fills.
	long := strings.Repeat("x", 1000)
	failed := 0
	for i := range 20 {
		if err := w.Write(Entry{Log: fmt.Sprintf("%d %s\n", i, long), Stream: "stdout", Time: time.Now()}); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			failed++
		}
	}
	if failed == 0 {
		t.Fatal("6k of tmpfs took 20k of log")
	}
	raw, _ := os.ReadFile(path)
	if len(raw) == 0 || raw[len(raw)-1] != '\n' {
		t.Fatalf("the log ends in a torn line: %q", raw[max(0, len(raw)-40):])
	}
	// Room again: the next entry is written whole, after the others.
	makeRoom()
	if err := w.Write(Entry{Log: "back\n", Stream: "stdout", Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	kept, err := Lines(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(kept) != 20-failed+1 || kept[len(kept)-1] != "back" {
		t.Fatalf("after room was made: %d entries, the last %q; %d failed", len(kept), kept[len(kept)-1], failed)
	}
	for i, k := range kept[:len(kept)-1] {
		if k != fmt.Sprintf("%d %s", i, long) {
			t.Fatalf("entry %d is %.20q", i, k)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(heard) != 2 || heard[0] == nil || heard[1] != nil {
		t.Fatalf("OnError heard %v, want the error then nil", heard)
	}
}
