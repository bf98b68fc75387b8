package compose

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// graphPlan makes a plan of n steps with the given dependencies
// (step -> steps it comes after, numbered from 1).
func graphPlan(n int, after map[int][]int) Plan {
	var p Plan
	for i := 1; i <= n; i++ {
		p.add(Step{Action: ActStart, Name: fmt.Sprint(i), After: after[i]})
	}
	return p
}

func TestWalkStartsEachStepAsSoonAsItsOwnDependenciesAreDone(t *testing.T) {
	t.Parallel()
	// 1 is slow; 2 -> 3 is a fast chain that must not wait for 1, and 4
	// needs both 1 and 3.
	plan := graphPlan(4, map[int][]int{3: {2}, 4: {1, 3}})
	var mu sync.Mutex
	var order []int
	release := make(chan struct{})
	err := walk(t.Context(), plan, -1, func(i int) error {
		if i == 0 {
			<-release
		}
		mu.Lock()
		order = append(order, i+1)
		n := len(order)
		mu.Unlock()
		if i == 2 && n == 2 {
			close(release) // 3 finished while 1 was still running
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(order) != "[2 3 1 4]" {
		t.Fatalf("order %v, want [2 3 1 4]: a step must not wait for a sibling level", order)
	}
}

func TestWalkRespectsTheParallelLimit(t *testing.T) {
	t.Parallel()
	plan := graphPlan(12, nil)
	var now, peak atomic.Int32
	err := walk(t.Context(), plan, 3, func(i int) error {
		n := now.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
		now.Add(-1)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if p := peak.Load(); p != 3 {
		t.Fatalf("peak parallelism %d, want 3", p)
	}
}

func TestWalkStopsAtAFailureUnlessKeepGoing(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	// 1 fails; 2 depends on it; 3 is independent but comes later.
	for _, keepGoing := range []bool{false, true} {
		plan := graphPlan(3, map[int][]int{2: {1}, 3: {}})
		plan.KeepGoing = keepGoing
		var ran []int
		var mu sync.Mutex
		err := walk(t.Context(), plan, 1, func(i int) error {
			mu.Lock()
			ran = append(ran, i+1)
			mu.Unlock()
			if i == 0 {
				return boom
			}
			return nil
		})
		if !errors.Is(err, boom) {
			t.Fatalf("keepGoing=%v: err %v", keepGoing, err)
		}
		want := "[1]"
		if keepGoing {
			want = "[1 3]"
		}
		if fmt.Sprint(ran) != want {
			t.Errorf("keepGoing=%v: ran %v, want %v", keepGoing, ran, want)
		}
	}
}

func TestWalkEndsOnCancel(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	plan := graphPlan(3, map[int][]int{2: {1}, 3: {2}})
	err := walk(ctx, plan, -1, func(i int) error {
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want canceled", err)
	}
}
