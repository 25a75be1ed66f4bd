package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
)

// fakePuller fails its first failures runs, then runs until its context
// ends; it logs each run and when it fails, runs and stops.
type fakePuller struct {
	failures int
	mu       sync.Mutex
	runs     int
	events   []string
}

func (f *fakePuller) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.events...)
}

func (f *fakePuller) puller() puller {
	return puller{name: "fake-puller", run: func(ctx context.Context, _ *PullContext) error {
		f.mu.Lock()
		f.runs++
		n := f.runs
		fails := n <= f.failures
		if fails {
			f.events = append(f.events, fmt.Sprintf("run %d failed", n))
		} else {
			f.events = append(f.events, fmt.Sprintf("run %d running", n))
		}
		f.mu.Unlock()
		if fails {
			return errors.New("informer for descriptions: forbidden")
		}
		<-ctx.Done()
		f.mu.Lock()
		f.events = append(f.events, fmt.Sprintf("run %d stopped", n))
		f.mu.Unlock()
		return nil
	}}
}

// A puller that fails to start is started again, with backoff, while the
// agent pulls, and not any more once the hub pushes.
func TestPullerRestarts(t *testing.T) {
	b := backoff{initial: 10 * time.Millisecond, max: 40 * time.Millisecond}
	tests := []struct {
		name     string
		failures int
		// after, the time after the switch to pull when the mode switches
		// to push.
		after      time.Duration
		wantPull   []string // the puller's log at the switch to push
		wantFinish []string // its log long after
	}{
		{
			name:       "fails twice, then runs",
			failures:   2,
			after:      time.Second,
			wantPull:   []string{"run 1 failed", "run 2 failed", "run 3 running"},
			wantFinish: []string{"run 1 failed", "run 2 failed", "run 3 running", "run 3 stopped"},
		},
		{
			// Runs at 0, 10, 30, 70 and 110ms (waits of 10, 20, 40 and 40ms,
			// the cap); push comes at 115ms, during the wait before run 6.
			name:       "fails on, until the hub pushes",
			failures:   1000,
			after:      115 * time.Millisecond,
			wantPull:   []string{"run 1 failed", "run 2 failed", "run 3 failed", "run 4 failed", "run 5 failed"},
			wantFinish: []string{"run 1 failed", "run 2 failed", "run 3 failed", "run 4 failed", "run 5 failed"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &fakePuller{failures: tc.failures}
				a := &Agent{}
				modes := make(chan clusterv1beta1.ClusterSyncMode)
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan struct{})
				go func() {
					defer close(done)
					a.followSyncMode(ctx, modes, PullContext{AppPusher: true}, []puller{f.puller()}, b)
				}()
				modes <- clusterv1beta1.PullSyncMode
				time.Sleep(tc.after) // fake time: advances once every goroutine waits
				synctest.Wait()
				if diff := cmp.Diff(tc.wantPull, f.log()); diff != "" {
					t.Errorf("while pulling (-want +got):\n%s", diff)
				}
				modes <- clusterv1beta1.PushSyncMode
				time.Sleep(time.Hour)
				synctest.Wait()
				if diff := cmp.Diff(tc.wantFinish, f.log()); diff != "" {
					t.Errorf("after the hub pushes (-want +got):\n%s", diff)
				}
				cancel()
				<-done
			})
		})
	}
}
