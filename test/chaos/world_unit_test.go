package chaos

import (
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
