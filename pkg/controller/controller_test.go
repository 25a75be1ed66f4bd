package controller

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
)

// fakeInformer hands the handler Watch registers to the test, and says it
// has synced once synced is set.
type fakeInformer struct {
	cache.SharedIndexInformer
	handler cache.ResourceEventHandler
	synced  atomic.Bool
	// polls counts HasSynced calls.
	polls atomic.Int32
}

type fakeRegistration struct {
	cache.ResourceEventHandlerRegistration
	inf *fakeInformer
}

func (r fakeRegistration) HasSynced() bool {
	r.inf.polls.Add(1)
	return r.inf.synced.Load()
}

func (f *fakeInformer) AddEventHandler(h cache.ResourceEventHandler) (cache.ResourceEventHandlerRegistration, error) {
	f.handler = h
	return fakeRegistration{inf: f}, nil
}

func configMap(ns, name, data string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string]string{"k": data}}
}

// queued drains l's queue.
func queued(l *Loop) []string {
	var out []string
	for l.queue.Len() > 0 {
		k, _ := l.queue.Get()
		l.queue.Done(k)
		out = append(out, k)
	}
	return out
}

func TestWatch(t *testing.T) {
	cm := configMap("ns", "a", "1")
	changed := configMap("ns", "a", "2")
	otherKeys := func(obj any) []string {
		if c, ok := obj.(*corev1.ConfigMap); ok {
			return []string{"by-data/" + c.Data["k"], "other"}
		}
		return nil
	}
	sameData := func(old, cur any) bool {
		return old.(*corev1.ConfigMap).Data["k"] == cur.(*corev1.ConfigMap).Data["k"]
	}
	for _, tc := range []struct {
		name  string
		keys  KeyFunc
		opts  []WatchOption
		event func(h cache.ResourceEventHandler)
		want  []string
	}{
		{name: "add", event: func(h cache.ResourceEventHandler) { h.OnAdd(cm, false) }, want: []string{"ns/a"}},
		{name: "update", event: func(h cache.ResourceEventHandler) { h.OnUpdate(cm, changed) }, want: []string{"ns/a"}},
		{name: "delete", event: func(h cache.ResourceEventHandler) { h.OnDelete(cm) }, want: []string{"ns/a"}},
		{
			name:  "delete seen late: the tombstone's object",
			event: func(h cache.ResourceEventHandler) { h.OnDelete(cache.DeletedFinalStateUnknown{Key: "ns/a", Obj: cm}) },
			want:  []string{"ns/a"},
		},
		{
			name: "cluster-scoped object: its name",
			event: func(h cache.ResourceEventHandler) {
				h.OnAdd(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns"}}, false)
			},
			want: []string{"ns"},
		},
		{name: "keys of the object", keys: otherKeys, event: func(h cache.ResourceEventHandler) { h.OnUpdate(cm, changed) }, want: []string{"by-data/2", "other"}},
		{
			name: "keys of a tombstone's object",
			keys: otherKeys,
			event: func(h cache.ResourceEventHandler) {
				h.OnDelete(cache.DeletedFinalStateUnknown{Key: "ns/a", Obj: changed})
			},
			want: []string{"by-data/2", "other"},
		},
		{name: "no keys: ignored", keys: func(any) []string { return nil }, event: func(h cache.ResourceEventHandler) { h.OnAdd(cm, false) }},
		{
			name:  "ignored update",
			opts:  []WatchOption{IgnoreUpdates(sameData)},
			event: func(h cache.ResourceEventHandler) { h.OnUpdate(cm, cm.DeepCopy()) },
		},
		{
			name:  "update not ignored",
			opts:  []WatchOption{IgnoreUpdates(sameData)},
			event: func(h cache.ResourceEventHandler) { h.OnUpdate(cm, changed) },
			want:  []string{"ns/a"},
		},
		{
			name:  "IgnoreUpdates leaves deletes alone",
			opts:  []WatchOption{IgnoreUpdates(func(any, any) bool { return true })},
			event: func(h cache.ResourceEventHandler) { h.OnDelete(cm) },
			want:  []string{"ns/a"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := New("test", nil)
			defer l.queue.ShutDown()
			inf := &fakeInformer{}
			if err := l.Watch(inf, tc.keys, tc.opts...); err != nil {
				t.Fatal(err)
			}
			tc.event(inf.handler)
			if diff := cmp.Diff(tc.want, queued(l)); diff != "" {
				t.Errorf("queued (-want +got):\n%s", diff)
			}
		})
	}
}

// call is one call of a test SyncFunc.
type call struct {
	key string
	// requeues is how many times key was retried with backoff so far.
	requeues int
}

// recorder is a SyncFunc returning results in turn (the last one again
// once they run out) and recording its calls.
type recorder struct {
	t       *testing.T
	l       *Loop
	mu      sync.Mutex
	results []result
	calls   []call
	at      []time.Time
	called  chan struct{}
}

type result struct {
	again time.Duration
	err   error
}

func newRecorder(t *testing.T, results ...result) *recorder {
	return &recorder{t: t, results: results, called: make(chan struct{}, 100)}
}

func (r *recorder) sync(_ context.Context, key string) (time.Duration, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call{key: key, requeues: r.l.queue.NumRequeues(key)})
	r.at = append(r.at, time.Now())
	res := r.results[min(len(r.calls), len(r.results))-1]
	r.called <- struct{}{}
	return res.again, res.err
}

// waitCalls waits until sync was called n times.
func (r *recorder) waitCalls(n int) {
	r.t.Helper()
	timeout := time.After(10 * time.Second)
	for range n {
		select {
		case <-r.called:
		case <-timeout:
			r.t.Fatalf("sync was called %d times in 10s, want %d", len(r.calls), n)
		}
	}
}

// run runs l until the test ends, logging into a buffer it returns.
func run(t *testing.T, l *Loop, workers int) ktesting.Buffer {
	logger := ktesting.NewLogger(t, ktesting.NewConfig(ktesting.Verbosity(4), ktesting.BufferLogs(true)))
	ctx, cancel := context.WithCancel(klog.NewContext(context.Background(), logger))
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.Run(ctx, workers)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return logger.GetSink().(ktesting.Underlier).GetBuffer()
}

// fastRetries swaps l's rate limiter for one retrying within milliseconds.
func fastRetries(l *Loop) {
	l.queue.ShutDown()
	l.queue = workqueue.NewTypedRateLimitingQueue(workqueue.NewTypedItemExponentialFailureRateLimiter[string](time.Millisecond, 10*time.Millisecond))
}

// logged is what buf holds, as "ERROR msg" and "INFO msg" lines.
func logged(buf ktesting.Buffer, msgs ...string) []string {
	var out []string
	for _, e := range buf.Data() {
		if slices.Contains(msgs, e.Message) {
			out = append(out, string(e.Type)+" "+e.Message)
		}
	}
	return out
}

func TestRunRetries(t *testing.T) {
	conflict := apierrors.NewConflict(schema.GroupResource{Resource: "configmaps"}, "a", errors.New("changed"))
	exists := apierrors.NewAlreadyExists(schema.GroupResource{Resource: "configmaps"}, "a")
	failed := errors.New("failed")
	conflicts := make([]result, quietRetries+1)
	for i := range conflicts {
		conflicts[i] = result{err: conflict}
	}
	for _, tc := range []struct {
		name    string
		results []result
		// want are the calls until the loop is idle.
		want []call
		// wantLogs are the retries' log lines.
		wantLogs []string
	}{
		{name: "done", results: []result{{}}, want: []call{{"ns/a", 0}}},
		{
			name:     "an error retries with backoff, reported",
			results:  []result{{err: failed}, {err: failed}, {}},
			want:     []call{{"ns/a", 0}, {"ns/a", 1}, {"ns/a", 2}},
			wantLogs: []string{"ERROR Sync failed, will retry", "ERROR Sync failed, will retry"},
		},
		{
			name:     "a conflict retries with backoff, quietly",
			results:  []result{{err: conflict}, {}},
			want:     []call{{"ns/a", 0}, {"ns/a", 1}},
			wantLogs: []string{"INFO Stale cache, will retry"},
		},
		{
			name:     "already exists retries with backoff, quietly",
			results:  []result{{err: exists}, {err: conflict}, {}},
			want:     []call{{"ns/a", 0}, {"ns/a", 1}, {"ns/a", 2}},
			wantLogs: []string{"INFO Stale cache, will retry", "INFO Stale cache, will retry"},
		},
		{
			name:    "conflicts that go on are reported",
			results: append(slices.Clone(conflicts), result{}),
			want: func() []call {
				var out []call
				for i := range quietRetries + 2 {
					out = append(out, call{"ns/a", i})
				}
				return out
			}(),
			wantLogs: append(slices.Repeat([]string{"INFO Stale cache, will retry"}, quietRetries), "ERROR Sync failed, will retry"),
		},
		{
			name:     "requeue after: the backoff is forgotten",
			results:  []result{{err: failed}, {again: 20 * time.Millisecond}, {}},
			want:     []call{{"ns/a", 0}, {"ns/a", 1}, {"ns/a", 0}},
			wantLogs: []string{"ERROR Sync failed, will retry"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRecorder(t, tc.results...)
			l := New("test", r.sync)
			r.l = l
			fastRetries(l)
			buf := run(t, l, 1)
			l.Add("ns/a")
			r.waitCalls(len(tc.want))
			// Idle: nothing more in the queue, no backoff left for a retry.
			if err := pollUntil(func() bool { return l.queue.Len() == 0 && l.queue.NumRequeues("ns/a") == 0 }); err != nil {
				t.Errorf("after the last call: %d queued, %d retries pending, want none", l.queue.Len(), l.queue.NumRequeues("ns/a"))
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			if diff := cmp.Diff(tc.want, r.calls, cmp.AllowUnexported(call{})); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantLogs, logged(buf, "Sync failed, will retry", "Stale cache, will retry")); diff != "" {
				t.Errorf("logs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRunRequeueAfter(t *testing.T) {
	const after = 100 * time.Millisecond
	r := newRecorder(t, result{again: after}, result{})
	l := New("test", r.sync)
	r.l = l
	run(t, l, 1)
	l.Add("ns/a")
	r.waitCalls(2)
	r.mu.Lock()
	defer r.mu.Unlock()
	if d := r.at[1].Sub(r.at[0]); d < after {
		t.Errorf("called again after %s, want at least %s", d, after)
	}
}

func TestRunAddAfter(t *testing.T) {
	const after = 100 * time.Millisecond
	r := newRecorder(t, result{})
	l := New("test", r.sync)
	r.l = l
	run(t, l, 1)
	start := time.Now()
	l.AddAfter("ns/a", after)
	r.waitCalls(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if d := r.at[0].Sub(start); d < after {
		t.Errorf("called after %s, want at least %s", d, after)
	}
}

func TestRunWaitsForSync(t *testing.T) {
	inf := &fakeInformer{}
	var early atomic.Bool
	r := newRecorder(t, result{})
	l := New("test", func(ctx context.Context, key string) (time.Duration, error) {
		if !inf.synced.Load() {
			early.Store(true)
		}
		return r.sync(ctx, key)
	})
	r.l = l
	if err := l.Watch(inf, nil); err != nil {
		t.Fatal(err)
	}
	inf.handler.OnAdd(configMap("ns", "a", "1"), true)
	run(t, l, 1)
	// Run polls the informer every 100ms: the second poll says it waits.
	if err := pollUntil(func() bool { return inf.polls.Load() >= 2 }); err != nil {
		t.Fatalf("Run did not ask whether the informer synced: %v", err)
	}
	inf.synced.Store(true)
	r.waitCalls(1)
	if early.Load() {
		t.Error("sync was called before the informer synced")
	}
}

func pollUntil(cond func() bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

func TestRunLogger(t *testing.T) {
	l := New("test", func(ctx context.Context, key string) (time.Duration, error) {
		klog.FromContext(ctx).Info("Syncing")
		return 0, nil
	})
	buf := run(t, l, 0) // at least one worker anyway
	l.Add("ns/a")
	if err := pollUntil(func() bool { return len(logged(buf, "Syncing")) > 0 }); err != nil {
		t.Fatalf("no worker synced ns/a: %v", err)
	}
	for _, e := range buf.Data() {
		if e.Message == "Syncing" {
			if diff := cmp.Diff([]any{"controller", "test", "key", "ns/a"}, e.WithKVList); diff != "" {
				t.Errorf("logger values (-want +got):\n%s", diff)
			}
		}
	}
}

func TestRunStopsAfterWorkers(t *testing.T) {
	started := make(chan struct{})
	var finished atomic.Bool
	l := New("test", func(ctx context.Context, key string) (time.Duration, error) {
		close(started)
		<-ctx.Done()
		finished.Store(true)
		return 0, ctx.Err()
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.Run(ctx, 2)
	}()
	l.Add("ns/a")
	<-started
	cancel()
	<-done
	if !finished.Load() {
		t.Error("Run returned before its worker's sync did")
	}
}

// lastFirst is a workqueue.Queue handing out the largest key first.
type lastFirst struct{ keys []string }

func (q *lastFirst) Touch(string)    {}
func (q *lastFirst) Push(key string) { q.keys = append(q.keys, key); slices.Sort(q.keys) }
func (q *lastFirst) Len() int        { return len(q.keys) }
func (q *lastFirst) Pop() (key string) {
	key, q.keys = q.keys[len(q.keys)-1], q.keys[:len(q.keys)-1]
	return key
}

// TestOrdered: a loop built Ordered hands waiting keys out in its queue's
// order, each once however often it was added, and keys added later
// (AddAfter, rate-limited retries) reach the same queue.
func TestOrdered(t *testing.T) {
	l := New("test", func(context.Context, string) (time.Duration, error) { return 0, nil }, Ordered(&lastFirst{}))
	for _, k := range []string{"ns/b", "ns/a", "ns/c", "ns/b"} {
		l.Add(k)
	}
	if diff := cmp.Diff([]string{"ns/c", "ns/b", "ns/a"}, queued(l)); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
	l.queue.AddRateLimited("ns/a")
	l.AddAfter("ns/z", time.Millisecond)
	err := wait.PollUntilContextTimeout(context.Background(), time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) {
		return l.queue.Len() == 2, nil
	})
	if err != nil {
		t.Fatalf("waiting for the delayed keys: %v", err)
	}
	if diff := cmp.Diff([]string{"ns/z", "ns/a"}, queued(l)); diff != "" {
		t.Errorf("delayed keys (-want +got):\n%s", diff)
	}
}
