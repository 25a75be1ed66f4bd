package apps

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// atOnce runs every call, never more than its limit together, and more than
// one together when the calls wait (as writes to the parent do).
func TestAtOnceBoundsAndOverlaps(t *testing.T) {
	const n, limit = 100, 8
	var running, most atomic.Int32
	var mu sync.Mutex
	called := map[int]int{}
	err := atOnce(context.Background(), n, limit, func(_ context.Context, i int) error {
		now := running.Add(1)
		defer running.Add(-1)
		for m := most.Load(); now > m && !most.CompareAndSwap(m, now); m = most.Load() {
		}
		time.Sleep(5 * time.Millisecond)
		mu.Lock()
		called[i]++
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(called) != n {
		t.Errorf("%d of %d calls made", len(called), n)
	}
	for i, c := range called {
		if c != 1 {
			t.Errorf("call %d made %d times, want once", i, c)
		}
	}
	if m := most.Load(); m > limit || m < 2 {
		t.Errorf("at most %d calls ran together, want between 2 and %d", m, limit)
	}
}

// After a call fails, atOnce starts no more, cancels those under way and
// returns the failure.
func TestAtOnceStopsAtTheFirstError(t *testing.T) {
	boom := errors.New("boom")
	var started atomic.Int32
	err := atOnce(context.Background(), 1000, 4, func(ctx context.Context, i int) error {
		started.Add(1)
		if i == 10 {
			return boom
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want %v", err, boom)
	}
	if s := started.Load(); s > 20 {
		t.Errorf("%d calls started, want the calls after the failure not started (at most about 10 + 4)", s)
	}
}
