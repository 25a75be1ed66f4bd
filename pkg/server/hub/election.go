package hub

import (
	"context"
	"sync"

	"k8s.io/klog/v2"
)

// An elector stands for the lease until ctx ends, and runs onStarted (in any
// goroutine) once this replica holds it, with a context that ends when the
// lease is lost or ctx ends, at the latest when the elector returns.
// Cancelling ctx gives the lease up. client-go's LeaderElector.Run is one.
type elector func(ctx context.Context, onStarted func(ctx context.Context))

// noElection makes this replica the leader for as long as ctx lasts
// (--leader-elect=false).
func noElection(ctx context.Context, onStarted func(ctx context.Context)) { onStarted(ctx) }

// runTerms runs the leader's controllers, started by start, in one term
// after another until ctx ends. A term is one holding of the lease; start's
// wait, called once the term's context ended, returns when everything start
// started has stopped. Two terms never overlap: the next one is stood for
// only once the previous term's wait returned, and on shutdown the lease is
// given up only then, so the next leader does not run beside this one's
// draining workers. If start fails, the lease is given up and runTerms
// returns the error: a leader with nothing running would hold the lease
// from the replicas that could do the work, and nobody would notice.
func runTerms(ctx context.Context, elect elector, start func(ctx context.Context) (wait func(), err error)) error {
	logger := klog.FromContext(ctx)
	for ctx.Err() == nil {
		if err := runTerm(ctx, elect, start); err != nil {
			return err
		}
		if ctx.Err() == nil {
			logger.Info("Stopped leading; standing for election again")
		}
	}
	return nil
}

// term is the state of one standing for the lease.
type term struct {
	mu sync.Mutex
	// leading is set when onStarted ran, over is set when the term ended
	// before that: a late onStarted then does nothing.
	leading, over bool
	// running holds while the term's controllers run or drain.
	running sync.WaitGroup
	err     error // start's, set before running is done
}

// runTerm stands for the lease once and returns when that term is over and
// its controllers have stopped.
func runTerm(ctx context.Context, elect elector, start func(ctx context.Context) (wait func(), err error)) error {
	// The elector's context outlives ctx, so that shutting down gives the
	// lease up only once the workers stopped: release is called then.
	electCtx, release := context.WithCancel(context.WithoutCancel(ctx))
	defer release()
	t := &term{}
	// Shutting down while not leading: stop standing now.
	stopStanding := context.AfterFunc(ctx, func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if !t.leading {
			t.over = true
			release()
		}
	})
	defer stopStanding()
	elect(electCtx, func(leaderCtx context.Context) {
		t.mu.Lock()
		if t.over {
			t.mu.Unlock()
			return
		}
		t.leading = true
		t.running.Add(1)
		t.mu.Unlock()
		defer t.running.Done()
		// Whatever ends the term (the lease lost, or ctx ending) ends the
		// controllers first, and the lease is given up after they stopped.
		defer release()
		workCtx, stop := context.WithCancel(leaderCtx)
		defer stop()
		defer context.AfterFunc(ctx, stop)()
		wait, err := start(workCtx)
		if err != nil {
			t.err = err
			return
		}
		<-workCtx.Done()
		wait()
	})
	t.mu.Lock()
	t.over = true
	t.mu.Unlock()
	t.running.Wait()
	return t.err
}
