package lockfile

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestTryAcquireSeesAHolder(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "a.lock")
	l, err := Acquire(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := TryAcquire(path); ok || err != nil {
		t.Fatalf("TryAcquire while held: %v %v", ok, err)
	}
	l.Unlock()
	l2, ok, err := TryAcquire(path)
	if !ok || err != nil {
		t.Fatalf("TryAcquire after unlock: %v %v", ok, err)
	}
	l2.Unlock()
}

func TestWaiterWakesWhenTheHolderLetsGo(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "a.lock")
	l, _ := Acquire(t.Context(), path)
	got := make(chan *Lock)
	go func() {
		w, err := Acquire(context.Background(), path)
		if err != nil {
			t.Error(err)
		}
		got <- w
	}()
	select {
	case <-got:
		t.Fatal("acquired while held")
	case <-time.After(100 * time.Millisecond):
	}
	l.Unlock()
	(<-got).Unlock()
}

// A holder that removes the lock file (its object is gone) must not leave
// a waiter holding a lock on an unlinked file while a newcomer locks the
// new one: both would think they hold it.
func TestRemoveWhileHeldMovesWaitersToTheNewFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "a.lock")
	l, _ := Acquire(t.Context(), path)
	got := make(chan *Lock)
	go func() {
		w, err := Acquire(context.Background(), path)
		if err != nil {
			t.Error(err)
		}
		got <- w
	}()
	time.Sleep(50 * time.Millisecond) // the waiter has opened the old file
	if err := l.Remove(); err != nil {
		t.Fatal(err)
	}
	w := <-got
	defer w.Unlock()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the waiter holds no file at the path: %v", err)
	}
	if _, ok, err := TryAcquire(path); ok || err != nil {
		t.Fatalf("a newcomer got the lock the waiter holds: %v %v", ok, err)
	}
}

func TestCancelledWaitReturns(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "a.lock")
	l, _ := Acquire(t.Context(), path)
	defer l.Unlock()
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := Acquire(ctx, path); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire with an expired context: %v", err)
	}
}
