// Package chaos is Clusternet's chaos suite: a parent with two hub
// replicas (leader election on, behind a balancer) and three children with
// agents (one Push, one Pull, one Dual), continuous rollouts (Subscriptions
// created, updated, scaled, rebound, overridden and deleted; a Helm release
// upgraded) while a seeded random schedule kills and restarts a hub
// replica (the leader or not), agents, apiservers and etcd, and cuts or
// slows the agents' connections to the parent. Invariants are checked all
// along and at the end (docs/reliability.md).
//
//	go test ./test/chaos -run TestChaos -v -chaos.duration=5m [-chaos.seed=N]
package chaos

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/clusternet/clusternet/test/e2e/e2eutil"
)

var (
	flagDuration   = flag.Duration("chaos.duration", 5*time.Minute, "how long faults are injected (the run goes on until -chaos.min-faults faults too)")
	flagSeed       = flag.Uint64("chaos.seed", 0, "seed of the fault and rollout schedules; 0: $CHAOS_SEED, else a random one (printed)")
	flagMinFaults  = flag.Int("chaos.min-faults", 30, "least number of faults to inject")
	flagConverge   = flag.Duration("chaos.converge", 4*time.Minute, "bound for everything to converge once faults stop")
	flagCheckpoint = flag.Int("chaos.checkpoint-every", 12, "faults between two quiet checkpoints (faults and rollouts paused, convergence checked)")
	flagApps       = flag.Int("chaos.apps", 4, "generic applications (Subscriptions) rolled out concurrently")
)

func TestMain(m *testing.M) {
	os.Exit(e2eutil.Main(m))
}

// seed is -chaos.seed, else $CHAOS_SEED, else a random one.
func seed(t *testing.T) uint64 {
	if *flagSeed != 0 {
		return *flagSeed
	}
	if s := os.Getenv("CHAOS_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CHAOS_SEED=%q: want an unsigned integer: %v", s, err)
		}
		return n
	}
	return rand.Uint64()
}

// TestChaos runs the chaos suite for -chaos.duration.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos suite: needs real control planes (run without -short)")
	}
	s := seed(t)
	replay := fmt.Sprintf("go test ./test/chaos -run TestChaos -v -chaos.seed=%d -chaos.duration=%s -chaos.min-faults=%d", s, *flagDuration, *flagMinFaults)
	t.Logf("chaos: seed %d (replay: %s)", s, replay)
	var w *world
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		// Registered first, so it runs last: after the logs, where CI's tail shows it.
		if w != nil {
			w.mu.Lock()
			for _, c := range w.causes {
				t.Logf("chaos: violated: %s", c)
			}
			w.mu.Unlock()
		}
		t.Logf("chaos: FAILED with seed %d; replay the same schedules with:\n  %s\n(or CHAOS_SEED=%d make chaos DURATION=%s)", s, replay, s, *flagDuration)
	})
	w = setUp(t, s)
	w.run(context.Background())
}
