package hub

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
)

var errStart = errors.New("approver: informer stopped")

// eventLog is an ordered log of what happened, safe across goroutines.
type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (r *eventLog) add(e string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *eventLog) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

// runAsync runs runTerms and returns its result on a channel.
func runAsync(ctx context.Context, elect elector, start func(context.Context) (func(), error)) <-chan error {
	done := make(chan error, 1)
	go func() { done <- runTerms(ctx, elect, start) }()
	return done
}

func failingStart(context.Context) (func(), error) { return nil, errStart }

// A lease holder whose controllers fail to start gives the lease up and
// reports the failure, rather than holding the lease with nothing running.
func TestRunTermsStartFailureReleasesLease(t *testing.T) {
	kube := fake.NewClientset()
	o := NewOptions()
	elect, err := o.newLeaseElector(kube, "hub-a")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	select {
	case err := <-runAsync(ctx, elect, failingStart):
		if !errors.Is(err, errStart) {
			t.Fatalf("runTerms = %v, want %v", err, errStart)
		}
	case <-ctx.Done():
		t.Fatal("runTerms still runs 10s after the controllers failed to start: the lease is held with nothing running")
	}
	lease, err := kube.CoordinationV1().Leases(o.LeaderElectNamespace).Get(t.Context(), "clusternet-hub", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := lease.Spec.HolderIdentity; h != nil && *h != "" {
		t.Errorf("lease holder = %q after a failed start, want none (released)", *h)
	}
}

// --leader-elect=false: a start failure is Run's error (a non-zero exit).
func TestRunTermsWithoutElectionStartFailure(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	select {
	case err := <-runAsync(ctx, noElection, failingStart):
		if !errors.Is(err, errStart) {
			t.Fatalf("runTerms = %v, want %v", err, errStart)
		}
	case <-ctx.Done():
		t.Fatal("runTerms still runs 10s after the controllers failed to start")
	}
}

// fakeElector models client-go's LeaderElector.Run: it starts onStarted in
// a goroutine with a context it cancels when the lease is lost, and returns
// then without waiting for onStarted.
type fakeElector struct {
	record *eventLog
	mu     sync.Mutex
	lose   []chan struct{} // one per term, closed to lose that term's lease
}

func (f *fakeElector) elect(ctx context.Context, onStarted func(context.Context)) {
	lost := make(chan struct{})
	f.mu.Lock()
	f.lose = append(f.lose, lost)
	n := len(f.lose)
	f.mu.Unlock()
	f.record.add("acquired " + fmt.Sprint(n))
	leaderCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go onStarted(leaderCtx)
	select {
	case <-lost:
	case <-ctx.Done():
		f.record.add("released " + fmt.Sprint(n))
	}
}

// loseTerm loses the lease of term i (from 0).
func (f *fakeElector) loseTerm(i int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	close(f.lose[i])
}

// heldStart starts terms whose first one has a worker that drains only when
// released is closed.
func heldStart(r *eventLog, released <-chan struct{}) func(context.Context) (func(), error) {
	var n int
	return func(ctx context.Context) (func(), error) {
		n++
		term := fmt.Sprint(n)
		r.add("start " + term)
		if n > 1 {
			return func() { r.add("stopped " + term) }, nil
		}
		return func() {
			<-released
			r.add("stopped " + term)
		}, nil
	}
}

// A term whose lease is lost while its workers still drain: the next term
// starts only once they stopped, so two terms never overlap.
func TestRunTermsNextTermWaitsForOldWorkers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &eventLog{}
		f := &fakeElector{record: r}
		released := make(chan struct{})
		ctx, cancel := context.WithCancel(t.Context())
		done := runAsync(ctx, f.elect, heldStart(r, released))
		synctest.Wait()
		f.loseTerm(0)
		synctest.Wait()
		if diff := cmp.Diff([]string{"acquired 1", "start 1"}, r.get()); diff != "" {
			t.Errorf("while term 1's worker drains (-want +got):\n%s", diff)
		}
		close(released)
		synctest.Wait()
		if diff := cmp.Diff([]string{"acquired 1", "start 1", "stopped 1", "acquired 2", "start 2"}, r.get()); diff != "" {
			t.Errorf("once term 1's worker stopped (-want +got):\n%s", diff)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runTerms = %v, want nil", err)
		}
	})
}

// On shutdown the lease is given up only once the term's workers stopped:
// the next leader never runs beside this one's draining workers.
func TestRunTermsShutdownReleasesAfterDrain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &eventLog{}
		f := &fakeElector{record: r}
		released := make(chan struct{})
		ctx, cancel := context.WithCancel(t.Context())
		done := runAsync(ctx, f.elect, heldStart(r, released))
		synctest.Wait()
		cancel()
		synctest.Wait()
		if diff := cmp.Diff([]string{"acquired 1", "start 1"}, r.get()); diff != "" {
			t.Errorf("while term 1's worker drains (-want +got):\n%s", diff)
		}
		close(released)
		if err := <-done; err != nil {
			t.Errorf("runTerms = %v, want nil", err)
		}
		if diff := cmp.Diff([]string{"acquired 1", "start 1", "stopped 1", "released 1"}, r.get()); diff != "" {
			t.Errorf("after shutdown (-want +got):\n%s", diff)
		}
	})
}

// client-go calls OnStoppedLeading whenever an elector stops, led or not:
// only the replica that held the lease says "Stopped leading".
func TestLeaseElectorStoppedLeadingOnlyIfLed(t *testing.T) {
	kube := fake.NewClientset()
	o := NewOptions()
	stand := func(id string, onStarted func(context.Context)) (stop func() []string) {
		elect, err := o.newLeaseElector(kube, id)
		if err != nil {
			t.Fatal(err)
		}
		logger := ktesting.NewLogger(t, ktesting.NewConfig(ktesting.BufferLogs(true)))
		ctx, cancel := context.WithCancel(klog.NewContext(t.Context(), logger))
		done := make(chan struct{})
		go func() {
			defer close(done)
			elect(ctx, onStarted)
		}()
		return func() []string {
			cancel()
			<-done
			var stopped []string // the elector's own messages aside
			for _, e := range logger.GetSink().(ktesting.Underlier).GetBuffer().Data() {
				if strings.HasPrefix(e.Message, "Stopped") {
					stopped = append(stopped, e.Message)
				}
			}
			return stopped
		}
	}
	leading := make(chan struct{})
	stopA := stand("hub-a", func(context.Context) { close(leading) })
	select {
	case <-leading:
	case <-time.After(10 * time.Second):
		t.Fatal("hub-a did not take the free lease within 10s")
	}
	stopB := stand("hub-b", func(context.Context) { t.Error("hub-b led while hub-a held the lease") })
	if diff := cmp.Diff([]string(nil), stopB()); diff != "" {
		t.Errorf("logs of hub-b, which never led (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"Stopped leading"}, stopA()); diff != "" {
		t.Errorf("logs of hub-a, which led (-want +got):\n%s", diff)
	}
}
