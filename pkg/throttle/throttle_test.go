package throttle

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestInterval(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC))
	i := &Interval{Clock: clk}
	var got []bool
	for _, step := range []time.Duration{0, time.Second, 8 * time.Second, 2 * time.Second} {
		clk.SetTime(clk.Now().Add(step))
		got = append(got, i.Allow(10*time.Second))
	}
	// The first runs; 1s and 9s later fall within 10s of it; 11s later runs.
	if diff := cmp.Diff([]bool{true, false, false, true}, got); diff != "" {
		t.Errorf("Allow (-want +got):\n%s", diff)
	}
	i.Mark()
	if i.Allow(10 * time.Second) {
		t.Error("Allow right after Mark")
	}
}
