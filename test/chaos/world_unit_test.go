package chaos

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestChartLeaderElection pins what docs/reliability.md says the hubs run
// with: the hub chart sets no leader election timings, so the hub's
// defaults, which the suite passes explicitly over framework.HubArgs'
// shortened ones (the last of a repeated flag wins).
func TestChartLeaderElection(t *testing.T) {
	args, lease, err := chartLeaderElection()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"--leader-elect-lease-duration=15s", "--leader-elect-renew-deadline=10s", "--leader-elect-retry-period=2s"}
	if diff := cmp.Diff(want, args); diff != "" {
		t.Errorf("leader election flags (-want +got):\n%s", diff)
	}
	if lease != 15*time.Second {
		t.Errorf("lease duration = %s, want 15s", lease)
	}
}

// TestAwaitConverged: a check that does not converge reports what was
// wrong, not what the last look's own deadline did to it. Before each look
// had its own timeout, the look that started as the bound ran out failed
// in the rate limiter and its error replaced the real reason.
func TestAwaitConverged(t *testing.T) {
	const bound, interval = 300 * time.Millisecond, 100 * time.Millisecond
	t.Run("not converged: the reason the looks gave", func(t *testing.T) {
		looks := 0
		ok, why := awaitConverged(context.Background(), bound, interval, func(ctx context.Context) (bool, string) {
			looks++
			deadline, has := ctx.Deadline()
			// What a client's rate limiter says when less than its wait is left.
			if !has || time.Until(deadline) < time.Second {
				return false, "rate: Wait(n=1) would exceed context deadline"
			}
			return false, fmt.Sprintf("child2: the Helm release is pending-upgrade (look %d)", looks)
		})
		if ok {
			t.Fatal("converged")
		}
		if want := fmt.Sprintf("child2: the Helm release is pending-upgrade (look %d)", looks); why != want {
			t.Errorf("why = %q, want %q", why, want)
		}
		if looks < 3 {
			t.Errorf("%d looks in %s every %s", looks, bound, interval)
		}
	})
	t.Run("converges on a later look", func(t *testing.T) {
		looks := 0
		ok, why := awaitConverged(context.Background(), bound, interval, func(context.Context) (bool, string) {
			looks++
			return looks == 2, "not yet"
		})
		if !ok || why != "" || looks != 2 {
			t.Errorf("ok=%v why=%q after %d looks, want converged after 2", ok, why, looks)
		}
	})
	t.Run("the run ends: the last real reason stays", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		looks := 0
		ok, why := awaitConverged(ctx, time.Minute, interval, func(ctx context.Context) (bool, string) {
			if looks++; looks == 1 {
				return false, "app1 not bound to child3"
			}
			cancel() // the run ends during this look
			return false, "listing Subscriptions: " + ctx.Err().Error()
		})
		if ok || why != "app1 not bound to child3" {
			t.Errorf("ok=%v why=%q", ok, why)
		}
	})
}
