package apps

import (
	"cmp"
	"context"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/util/wait"
	clienttesting "k8s.io/client-go/testing"

	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned/fake"
	"github.com/clusternet/clusternet/pkg/generated/informers/externalversions"
)

// newClientset is the generated fake clientset with, in front of its
// tracker, a reactor that keeps the API server's rules the controller relies
// on: status subresources, generation bumps on spec changes, finalizers
// holding a deletion (deletionTimestamp) until the last one is removed,
// uids, and resourceVersion conflicts.
func newClientset(objects ...runtime.Object) *fake.Clientset {
	api := &fakeAPI{}
	for _, obj := range objects {
		api.stamp(obj)
	}
	cs := fake.NewClientset(objects...)
	api.tracker = cs.Tracker()
	cs.PrependReactor("*", "*", api.react)
	return cs
}

type fakeAPI struct {
	tracker clienttesting.ObjectTracker
	rv      atomic.Int64
	mu      sync.Mutex
}

func (a *fakeAPI) stamp(obj runtime.Object) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return
	}
	if m.GetUID() == "" {
		m.SetUID(uuid.NewUUID())
	}
	if m.GetGeneration() == 0 {
		m.SetGeneration(1)
	}
	if ts := m.GetCreationTimestamp(); ts.IsZero() {
		m.SetCreationTimestamp(metav1.Now())
	}
	m.SetResourceVersion(strconv.FormatInt(a.rv.Add(1), 10))
}

// withoutMeta is obj without metadata and status: what a spec change is.
func withoutMeta(obj runtime.Object) map[string]any {
	u, _ := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	delete(u, "metadata")
	delete(u, "status")
	delete(u, "apiVersion")
	delete(u, "kind")
	return u
}

func statusOf(obj runtime.Object) reflect.Value {
	v := reflect.ValueOf(obj).Elem().FieldByName("Status")
	return v
}

func (a *fakeAPI) react(action clienttesting.Action) (bool, runtime.Object, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	gvr, ns := action.GetResource(), action.GetNamespace()
	switch act := action.(type) {
	case clienttesting.CreateActionImpl:
		obj := act.GetObject().DeepCopyObject()
		a.stamp(obj)
		if err := a.tracker.Create(gvr, obj, ns); err != nil {
			return true, nil, err
		}
		return true, obj, nil
	case clienttesting.UpdateActionImpl:
		obj := act.GetObject().DeepCopyObject()
		m, _ := meta.Accessor(obj)
		old, err := a.tracker.Get(gvr, ns, m.GetName())
		if err != nil {
			return true, nil, err
		}
		om, _ := meta.Accessor(old)
		if rv := m.GetResourceVersion(); rv != "" && rv != om.GetResourceVersion() {
			return true, nil, apierrors.NewConflict(gvr.GroupResource(), m.GetName(), fmt.Errorf("the object has been modified; resourceVersion %s is not %s", rv, om.GetResourceVersion()))
		}
		var result runtime.Object
		if act.GetSubresource() == "status" {
			result = old.DeepCopyObject()
			if s := statusOf(result); s.IsValid() {
				s.Set(statusOf(obj))
			}
		} else {
			result = obj
			if s := statusOf(result); s.IsValid() {
				s.Set(statusOf(old))
			}
			rm, _ := meta.Accessor(result)
			rm.SetUID(om.GetUID())
			rm.SetCreationTimestamp(om.GetCreationTimestamp())
			rm.SetDeletionTimestamp(om.GetDeletionTimestamp())
			rm.SetGeneration(om.GetGeneration())
			if !apiequality.Semantic.DeepEqual(withoutMeta(old), withoutMeta(result)) {
				rm.SetGeneration(om.GetGeneration() + 1)
			}
			if om.GetDeletionTimestamp() != nil && len(rm.GetFinalizers()) == 0 {
				return true, result, a.tracker.Delete(gvr, ns, m.GetName())
			}
		}
		rm, _ := meta.Accessor(result)
		rm.SetResourceVersion(strconv.FormatInt(a.rv.Add(1), 10))
		if err := a.tracker.Update(gvr, result, ns); err != nil {
			return true, nil, err
		}
		return true, result, nil
	case clienttesting.DeleteActionImpl:
		old, err := a.tracker.Get(gvr, ns, act.GetName())
		if err != nil {
			return true, nil, err
		}
		om, _ := meta.Accessor(old)
		if pre := act.DeleteOptions.Preconditions; pre != nil && pre.UID != nil && *pre.UID != om.GetUID() {
			return true, nil, apierrors.NewConflict(gvr.GroupResource(), act.GetName(), fmt.Errorf("precondition failed: uid %s is not %s", *pre.UID, om.GetUID()))
		}
		if len(om.GetFinalizers()) == 0 {
			return true, nil, a.tracker.Delete(gvr, ns, act.GetName())
		}
		if om.GetDeletionTimestamp() != nil {
			return true, old, nil
		}
		upd := old.DeepCopyObject()
		um, _ := meta.Accessor(upd)
		now := metav1.Now()
		um.SetDeletionTimestamp(&now)
		um.SetResourceVersion(strconv.FormatInt(a.rv.Add(1), 10))
		return true, upd, a.tracker.Update(gvr, upd, ns)
	}
	return false, nil, nil
}

// eventLog records events for tests to read.
type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (l *eventLog) add(obj runtime.Object, eventtype, reason, message string) {
	m, _ := meta.Accessor(obj)
	kind := reflect.TypeOf(obj).Elem().Name()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, fmt.Sprintf("%s %s/%s %s %s: %s", kind, m.GetNamespace(), m.GetName(), eventtype, reason, message))
}

func (l *eventLog) Event(obj runtime.Object, eventtype, reason, message string) {
	l.add(obj, eventtype, reason, message)
}

func (l *eventLog) Eventf(obj runtime.Object, eventtype, reason, format string, args ...any) {
	l.add(obj, eventtype, reason, fmt.Sprintf(format, args...))
}

func (l *eventLog) AnnotatedEventf(obj runtime.Object, _ map[string]string, eventtype, reason, format string, args ...any) {
	l.add(obj, eventtype, reason, fmt.Sprintf(format, args...))
}

// matching are the recorded events containing all of parts.
func (l *eventLog) matching(parts ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.events {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(e, p)
		}
		if ok {
			out = append(out, e)
		}
	}
	return out
}

// testMapper serves a few kinds; Reset counts calls.
type testMapper struct {
	meta.RESTMapper
	resets atomic.Int32
}

func (m *testMapper) Reset() { m.resets.Add(1) }

func newTestMapper() *testMapper {
	m := meta.NewDefaultRESTMapper(nil)
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "Namespace"}, meta.RESTScopeRoot)
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "Service"}, meta.RESTScopeNamespace)
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, meta.RESTScopeNamespace)
	m.Add(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, meta.RESTScopeNamespace)
	return &testMapper{RESTMapper: m}
}

// harness runs the controller against a fake parent.
type harness struct {
	t      *testing.T
	cs     *fake.Clientset
	events *eventLog
	mapper *testMapper
	ctx    context.Context
	ctl    *Controller
	// workers run each loop (2 unless set before run).
	workers int
	// failOver is Options.FailOver (set before run).
	failOver bool
	// statusSettle replaces the controller's when set (before run).
	statusSettle time.Duration
	// basesAtOnce replaces the controller's when set (before run).
	basesAtOnce int
}

func start(t *testing.T, objects ...runtime.Object) *harness {
	t.Helper()
	h := newHarness(t, objects...)
	h.run()
	return h
}

// newHarness is a harness whose controller is not running yet, for a test
// to add reactors to its clientset first; run starts it.
func newHarness(t *testing.T, objects ...runtime.Object) *harness {
	return &harness{t: t, cs: newClientset(objects...), events: &eventLog{}, mapper: newTestMapper()}
}

// run starts the informers and the controller, both stopped when the test ends.
func (h *harness) run() {
	t := h.t
	t.Helper()
	informers := externalversions.NewSharedInformerFactory(h.cs, 0)
	ctl, err := New(Options{Clusternet: h.cs, Informers: informers, Mapper: h.mapper, Events: h.events, FailOver: h.failOver})
	if err != nil {
		t.Fatal(err)
	}
	if h.statusSettle > 0 {
		ctl.statusSettle = h.statusSettle
	}
	if h.basesAtOnce > 0 {
		ctl.basesAtOnce = h.basesAtOnce
	}
	h.ctl = ctl
	ctx, cancel := context.WithCancel(context.Background())
	h.ctx = ctx
	informers.Start(ctx.Done())
	done := make(chan struct{})
	go func() {
		ctl.Run(ctx, cmp.Or(h.workers, 2))
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		informers.Shutdown()
	})
}

// eventually polls cond until it holds; the last reason is in the failure.
func (h *harness) eventually(what string, cond func() (bool, string)) {
	h.t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(h.ctx, 10*time.Millisecond, 15*time.Second, true, func(context.Context) (bool, error) {
		ok, why := cond()
		last = why
		return ok, nil
	})
	if err != nil {
		h.t.Fatalf("waiting for %s: %v (last: %s)", what, err, last)
	}
}
