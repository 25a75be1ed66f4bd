package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	clienttesting "k8s.io/client-go/testing"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned/fake"
)

// The two clusters of the fixtures: dedicated namespace, name, id.
const (
	nsChild1 = "clusternet-5l82l"
	nsChild2 = "clusternet-8x2kq"
	subUID   = "5b1b6c3e-0c47-4c55-9d2f-1f0c8a7e2d10"
)

// testSubscription is app-demo in default, generation 1, scheduled to
// both clusters, with its feeds resolved; mods change it.
func testSubscription(mods ...func(*appsv1alpha1.Subscription)) *appsv1alpha1.Subscription {
	sub := &appsv1alpha1.Subscription{
		ObjectMeta: metav1.ObjectMeta{Name: "app-demo", Namespace: "default", UID: subUID, Generation: 1,
			CreationTimestamp: metav1.NewTime(fixedTime)},
		Spec: appsv1alpha1.SubscriptionSpec{Feeds: []appsv1alpha1.Feed{
			{APIVersion: "v1", Kind: "Namespace", Name: "foo"},
			{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "foo",
				FeedSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"clusternet-app": "multi-cluster-nginx"}}},
		}},
		Status: appsv1alpha1.SubscriptionStatus{
			BindingClusters: []string{nsChild2 + "/child2", nsChild1 + "/child1"},
			Conditions: []metav1.Condition{
				{Type: conditionFeedsResolved, Status: metav1.ConditionTrue, Reason: "Resolved", ObservedGeneration: 1},
				{Type: conditionScheduled, Status: metav1.ConditionTrue, Reason: "Scheduled", Message: "bound to 2 clusters", ObservedGeneration: 1},
				{Type: conditionReady, Status: metav1.ConditionTrue, Reason: "Ready", Message: "all 2 Descriptions deployed in 2 clusters", ObservedGeneration: 1},
			},
		},
	}
	for _, m := range mods {
		m(sub)
	}
	return sub
}

func ownedLabels(clusterID string) map[string]string {
	return map[string]string{
		appsv1alpha1.LabelSubscriptionName: "app-demo", appsv1alpha1.LabelSubscriptionNamespace: "default",
		appsv1alpha1.LabelSubscriptionUID: subUID, appsv1alpha1.LabelClusterID: clusterID,
	}
}

var (
	feedNamespace  = appsv1alpha1.Feed{APIVersion: "v1", Kind: "Namespace", Name: "foo"}
	feedDeployment = appsv1alpha1.Feed{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "foo", Name: "my-nginx"}
)

// testBase is app-demo's Base in namespace ns, rendered at generation 1.
func testBase(ns, clusterID string, mods ...func(*appsv1alpha1.Base)) *appsv1alpha1.Base {
	b := &appsv1alpha1.Base{
		ObjectMeta: metav1.ObjectMeta{Name: "app-demo", Namespace: ns, Generation: 1, Labels: ownedLabels(clusterID),
			CreationTimestamp: metav1.NewTime(fixedTime.Add(time.Second))},
		Spec: appsv1alpha1.BaseSpec{Feeds: []appsv1alpha1.Feed{feedNamespace, feedDeployment}},
		Status: appsv1alpha1.BaseStatus{Conditions: []metav1.Condition{
			{Type: conditionRendered, Status: metav1.ConditionTrue, Reason: "Rendered", Message: "the Descriptions are up to date", ObservedGeneration: 1},
		}},
	}
	for _, m := range mods {
		m(b)
	}
	return b
}

// testDescription is app-demo-generic in namespace ns (Namespace foo and
// Deployment foo/my-nginx with 3 replicas), reported by its deployer with
// phase, the Deployment's ready replicas and whether it is available.
func testDescription(ns, clusterID string, phase appsv1alpha1.DescriptionPhase, ready int32, mods ...func(*appsv1alpha1.Description)) *appsv1alpha1.Description {
	d := &appsv1alpha1.Description{
		ObjectMeta: metav1.ObjectMeta{Name: "app-demo-generic", Namespace: ns, Generation: 1, Labels: ownedLabels(clusterID),
			CreationTimestamp: metav1.NewTime(fixedTime.Add(2 * time.Second))},
		Spec: appsv1alpha1.DescriptionSpec{Deployer: appsv1alpha1.DescriptionGenericDeployer, Raw: []runtime.RawExtension{
			{Raw: []byte(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"foo"}}`)},
			{Raw: []byte(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"my-nginx","namespace":"foo"},"spec":{"replicas":3}}`)},
		}},
		Status: appsv1alpha1.DescriptionStatus{Phase: phase, ObservedGeneration: 1},
	}
	switch phase {
	case appsv1alpha1.DescriptionPhaseSuccess:
		d.Status.ManifestStatuses = []appsv1alpha1.ManifestStatus{
			{Feed: feedNamespace, FeedStatus: appsv1alpha1.FeedStatus{Applied: true, Available: true}},
			deploymentStatus(ready),
		}
	case appsv1alpha1.DescriptionPhasePending:
		d.Status.ManifestStatuses = []appsv1alpha1.ManifestStatus{
			{Feed: feedNamespace, FeedStatus: appsv1alpha1.FeedStatus{Reason: "not applied yet"}},
			{Feed: feedDeployment, FeedStatus: appsv1alpha1.FeedStatus{Reason: "not applied yet"}},
		}
	}
	for _, m := range mods {
		m(d)
	}
	return d
}

// deploymentStatus is my-nginx applied with ready of 3 replicas, available
// when all are, with the reason the deployer gives otherwise.
func deploymentStatus(ready int32) appsv1alpha1.ManifestStatus {
	st := appsv1alpha1.FeedStatus{Applied: true, Available: ready == 3, Replicas: 3, ReadyReplicas: ready, AvailableReplicas: ready}
	if ready < 3 {
		st.Reason = fmt.Sprintf("%d of 3 updated replicas available", ready)
	}
	return appsv1alpha1.ManifestStatus{Feed: feedDeployment, FeedStatus: st}
}

func failed(reason string) func(*appsv1alpha1.Description) {
	return func(d *appsv1alpha1.Description) { d.Status.Reason = reason }
}

// rolledOut is app-demo done in both clusters.
func rolledOut() []runtime.Object {
	return []runtime.Object{
		testSubscription(),
		testBase(nsChild1, id1), testBase(nsChild2, id2),
		testDescription(nsChild1, id1, appsv1alpha1.DescriptionPhaseSuccess, 3),
		testDescription(nsChild2, id2, appsv1alpha1.DescriptionPhaseSuccess, 3),
	}
}

// testMapper is the RESTMapper the plugin builds, on the fake server's
// discovery (the shadow group hidden, short names expanded).
func testMapper(t *testing.T) func() (meta.RESTMapper, error) {
	t.Helper()
	f := newFakeServer(t)
	flags := genericclioptions.NewConfigFlags(true)
	kubeconfig, cacheDir := f.kubeconfig(t), t.TempDir()
	flags.KubeConfig, flags.CacheDir = &kubeconfig, &cacheDir
	return newWithoutShadowGroup(flags, streamsForTest()).ToRESTMapper
}

// syncBuffer is an output stream a test may read while a command writes
// it; written has a value after each write.
type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	written chan struct{}
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.written == nil {
		s.written = make(chan struct{}, 1)
	}
	select {
	case s.written <- struct{}{}:
	default:
	}
	return s.b.Write(p)
}

func (s *syncBuffer) writes() chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.written == nil {
		s.written = make(chan struct{}, 1)
	}
	return s.written
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// rolloutRun is one run of `rollout status` against a fake clientset.
type rolloutRun struct {
	cs       *fake.Clientset
	terminal bool
	out, err syncBuffer
	watches  chan string
	done     chan error
}

// newRolloutRun makes a fake parent holding objs that records each watch
// it starts, by resource and namespace.
func newRolloutRun(objs ...runtime.Object) *rolloutRun {
	r := &rolloutRun{cs: fake.NewClientset(objs...), watches: make(chan string, 100), done: make(chan error, 1)}
	r.cs.PrependWatchReactor("*", func(a clienttesting.Action) (bool, watch.Interface, error) {
		r.watches <- a.GetResource().Resource + " " + a.GetNamespace()
		return false, nil, nil
	})
	return r
}

// forbid makes the fake refuse verb on resource in namespace ("" for all
// namespaces) as the parent refuses a user without the permission.
func (r *rolloutRun) forbid(verb, resource, namespace string) {
	r.cs.PrependReactor(verb, resource, func(a clienttesting.Action) (bool, runtime.Object, error) {
		if a.GetNamespace() != namespace {
			return false, nil, nil
		}
		return true, nil, apierrors.NewForbidden(appsv1alpha1.Resource(resource), "", errFakeRBAC)
	})
}

var errFakeRBAC = errors.New(`user "alice" cannot list resource in the namespace`)

// start runs the command with args, in the background.
func (r *rolloutRun) start(t *testing.T, args ...string) {
	t.Helper()
	mapper := testMapper(t)
	o := NewRolloutStatusOptions(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &r.out, ErrOut: &r.err})
	o.namespace = "default"
	o.mapper = mapper
	o.newClient = func() (versioned.Interface, error) { return r.cs, nil }
	o.isTerminal = func(io.Writer) bool { return r.terminal }
	o.allowColor = func(io.Writer) bool { return false }
	o.size = func() (int, int) { return 0, 0 }
	cmd := newCmdRolloutStatus(o, nil, nil)
	cmd.SetArgs(args)
	cmd.SetOut(&r.out)
	cmd.SetErr(&r.err)
	cmd.SilenceErrors = true
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	go func() { r.done <- cmd.ExecuteContext(ctx) }()
}

// wait is the command's error, once it has ended.
func (r *rolloutRun) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("rollout status did not end; output so far:\n%s%s", r.out.String(), r.err.String())
		return nil
	}
}

// run runs the command to its end.
func (r *rolloutRun) run(t *testing.T, args ...string) error {
	t.Helper()
	r.start(t, args...)
	return r.wait(t)
}

// waitWatching waits until the command watches every one of want
// ("<resource> <namespace>").
func (r *rolloutRun) waitWatching(t *testing.T, want ...string) {
	t.Helper()
	seen := map[string]bool{}
	for _, w := range want {
		for !seen[w] {
			select {
			case got := <-r.watches:
				seen[got] = true
			case err := <-r.done:
				t.Fatalf("rollout status ended (%v) before watching %q:\n%s%s", err, w, r.out.String(), r.err.String())
			case <-time.After(30 * time.Second):
				t.Fatalf("rollout status never watched %q", w)
			}
		}
	}
}

// waitOutput waits until the output holds s.
func (r *rolloutRun) waitOutput(t *testing.T, s string) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for !strings.Contains(r.out.String(), s) {
		select {
		case <-r.out.writes():
		case err := <-r.done:
			t.Fatalf("rollout status ended (%v) before printing %q:\n%s%s", err, s, r.out.String(), r.err.String())
		case <-timeout:
			t.Fatalf("output never held %q:\n%s", s, r.out.String())
		}
	}
}

func exitMessage(err error) string {
	if err == nil {
		return ""
	}
	var b bytes.Buffer
	exitCode(err, &b)
	return b.String()
}
