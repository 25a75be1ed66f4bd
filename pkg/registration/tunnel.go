package registration

import (
	"context"
	"time"
)

// FirstReportWaitsForTunnel bounds how long an agent's first heartbeat
// waits for its tunnel to come up. Reporting the tunnel down and then up is
// two status writes per agent start where one does: a thousand more when a
// fleet registers or comes back after a parent outage. A hub that cannot be
// reached delays the first report of the child's health by this much.
const FirstReportWaitsForTunnel = 2 * time.Second

// AwaitTunnel returns once up says the tunnel is up, or after patience.
// kick is where the tunnel asks for a heartbeat when it comes up; that kick
// is then answered by the report that follows, so it is drained and the
// heartbeat loop does not write the same again at once. The agent and the
// scale benchmark's stand-ins share it, so the benchmark measures the
// agent's own start.
func AwaitTunnel(ctx context.Context, up func() bool, kick <-chan struct{}, patience time.Duration) {
	timer := time.NewTimer(patience)
	defer timer.Stop()
	for !up() {
		select {
		case <-kick: // the tunnel's, or a capacity change: the report says both
		case <-timer.C:
			return
		case <-ctx.Done():
			return
		}
	}
	select {
	case <-kick:
	default:
	}
}
