package clusterclients

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clusternet/clusternet/pkg/tunnel/tunneltest"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hashicorp/yamux"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	kubefake "k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/deployer"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned/fake"
	"github.com/clusternet/clusternet/pkg/generated/informers/externalversions"
	"github.com/clusternet/clusternet/pkg/helm"
	hubhelm "github.com/clusternet/clusternet/pkg/server/hub/helm"
	"github.com/clusternet/clusternet/pkg/server/hub/sockets"
	"github.com/clusternet/clusternet/pkg/tunnel"
	"github.com/clusternet/clusternet/pkg/tunnel/wire"
)

const (
	clusterID = "0b9e2c4e-0000-4000-8000-000000000001"
	dedicated = "clusternet-abcde"
)

func managedCluster() *clusterv1beta1.ManagedCluster {
	return &clusterv1beta1.ManagedCluster{
		ObjectMeta: metav1.ObjectMeta{Name: "child-1", Namespace: dedicated, Labels: map[string]string{clusterv1beta1.LabelClusterID: clusterID}},
		Spec:       clusterv1beta1.ManagedClusterSpec{ClusterID: types.UID(clusterID), SyncMode: clusterv1beta1.DualSyncMode},
		Status:     clusterv1beta1.ManagedClusterStatus{AppPusher: true},
	}
}

func registration() *clusterv1beta1.ClusterRegistrationRequest {
	approved := clusterv1beta1.RequestApproved
	return &clusterv1beta1.ClusterRegistrationRequest{
		ObjectMeta: metav1.ObjectMeta{Name: clusterv1beta1.NamePrefix + clusterID},
		Spec:       clusterv1beta1.ClusterRegistrationRequestSpec{ClusterID: types.UID(clusterID)},
		Status:     clusterv1beta1.ClusterRegistrationRequestStatus{Result: &approved, DedicatedNamespace: dedicated},
	}
}

// fakeAgent is the agent end of a cluster's tunnel in front of a tiny
// child apiserver: discovery of v1 namespaces, and Namespace "default".
type fakeAgent struct {
	mu sync.Mutex
	// requests are the paths asked, with "agent" when the hub sent them as
	// the cluster's agent.
	requests []string
	// conns counts the tunnel streams the hub opened.
	conns int
}

func (a *fakeAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/direct")
	who := "someone else"
	if wire.TakeIdentity(r.Header).Agent {
		who = "agent"
	}
	a.mu.Lock()
	a.requests = append(a.requests, who+" "+path)
	a.mu.Unlock()
	var body any
	switch path {
	case "/api":
		body = &metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"},
			ServerAddressByClientCIDRs: []metav1.ServerAddressByClientCIDR{{ClientCIDR: "0.0.0.0/0", ServerAddress: "child"}}}
	case "/apis":
		body = &metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}}
	case "/api/v1":
		body = &metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: "v1",
			APIResources: []metav1.APIResource{{Name: "namespaces", Kind: "Namespace", Verbs: metav1.Verbs{"get", "list", "watch"}}}}
	case "/api/v1/namespaces/default":
		body = &corev1.Namespace{TypeMeta: metav1.TypeMeta{Kind: "Namespace", APIVersion: "v1"}, ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	default:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(&metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure,
			Code: http.StatusNotFound, Reason: metav1.StatusReasonNotFound, Message: path + " not found"})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}

func (a *fakeAgent) take() (requests []string, conns int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	requests, conns = a.requests, a.conns
	a.requests, a.conns = nil, 0
	return requests, conns
}

// connect opens a tunnel of the cluster to the hub's tunnel registry.
func (a *fakeAgent) connect(t *testing.T, tunnels *tunnel.Registry) *yamux.Session {
	t.Helper()
	hub, agent := tunneltest.Pipe(t)
	srv := &http.Server{Handler: a, ConnState: func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			a.mu.Lock()
			a.conns++
			a.mu.Unlock()
		}
	}}
	go func() { _ = srv.Serve(agent) }()
	t.Cleanup(func() { _ = srv.Close(); _ = hub.Close() })
	tunnels.Add(clusterID, hub)
	return hub
}

// env is a hub replica holding the tunnel of one registered cluster, with
// the registry and its consumers wired as package hub wires them.
type env struct {
	t          *testing.T
	ctx        context.Context
	client     *fake.Clientset
	tunnels    *tunnel.Registry
	transports *sockets.Transports
	agent      *fakeAgent
	session    *yamux.Session
	reg        *Registry
	deployer   *deployer.Controller
	pusher     *hubhelm.Pusher
	// pushed counts the Helm pusher's events.
	pushed *countingRecorder
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	client := fake.NewClientset(managedCluster(), registration())
	factory := externalversions.NewSharedInformerFactory(client, 0)
	clusters := factory.Clusters().V1beta1()
	tunnels := tunnel.NewRegistry()
	transports := sockets.NewTransports(tunnels, 16)
	reg, err := New(transports, clusters.ManagedClusters(), clusters.ClusterRegistrationRequests())
	if err != nil {
		t.Fatal(err)
	}
	pushed := &countingRecorder{}
	registrations := sockets.Registrations{Lister: clusters.ClusterRegistrationRequests().Lister()}
	ctl, err := deployer.NewController(deployer.Options{
		Name:         "generic-pusher",
		Parent:       client,
		Descriptions: factory.Apps().V1alpha1().Descriptions(),
		Events:       record.NewFakeRecorder(100),
		Clients:      reg,
		Place: func(namespace string) deployer.Placement {
			if namespace != dedicated || registrations.Namespace(clusterID) != dedicated || !tunnels.Has(clusterID) {
				return deployer.Placement{Decision: deployer.Skip}
			}
			return deployer.Placement{Decision: deployer.Act, ClusterID: clusterID}
		},
		Workers: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	pusher, err := hubhelm.NewPusher(client, kubefake.NewClientset(), factory.Apps().V1alpha1().HelmReleases(), clusters.ManagedClusters(),
		tunnels, reg, registrations.Namespace, helm.NewSource(), pushed)
	if err != nil {
		t.Fatal(err)
	}
	// The fake's watches do not resume from the list's resourceVersion: a
	// change made after the informers listed but before their watch began
	// is lost for good. Tests change ManagedClusters and requests right
	// after this returns, so it returns once those watches are in place.
	var watchMu sync.Mutex
	watching := map[string]bool{}
	client.PrependWatchReactor("*", func(a clienttesting.Action) (bool, watch.Interface, error) {
		w, err := client.Tracker().Watch(a.GetResource(), a.GetNamespace(), a.(clienttesting.WatchActionImpl).ListOptions)
		if err == nil {
			watchMu.Lock()
			watching[a.GetResource().Resource] = true
			watchMu.Unlock()
		}
		return true, w, err
	})
	factory.Start(ctx.Done())
	var running sync.WaitGroup
	running.Go(func() { ctl.Run(ctx) })
	running.Go(func() { pusher.Run(ctx, 1) })
	t.Cleanup(func() {
		cancel()
		running.Wait()
		factory.Shutdown()
		reg.Close()
	})
	factory.WaitForCacheSync(ctx.Done())
	if err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		watchMu.Lock()
		defer watchMu.Unlock()
		return watching["managedclusters"] && watching["clusterregistrationrequests"], nil
	}); err != nil {
		t.Fatalf("the informers' watches did not begin: %v", err)
	}
	e := &env{t: t, ctx: ctx, client: client, tunnels: tunnels, transports: transports, agent: &fakeAgent{}, reg: reg, deployer: ctl, pusher: pusher, pushed: pushed}
	e.session = e.agent.connect(t, tunnels)
	return e
}

// eventually waits, at most 30 seconds, for cond.
func (e *env) eventually(what string, cond func() bool) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	if err := wait.PollUntilContextCancel(ctx, 5*time.Millisecond, true, func(context.Context) (bool, error) { return cond(), nil }); err != nil {
		e.t.Fatalf("%s: not within 30s", what)
	}
}

// held is what the replica holds of each cluster, everywhere.
type held struct {
	Registry, DeployerWatches, Transports []string
}

func (e *env) held() held {
	return held{Registry: e.reg.Held(), DeployerWatches: e.deployer.Watching(), Transports: e.transports.Held()}
}

// use has the deployer and the Helm pusher act for the cluster, and sends
// a request through its clients, until all hold it.
func (e *env) use() *Cluster {
	e.t.Helper()
	ctx := context.Background()
	desc := &appsv1alpha1.Description{
		ObjectMeta: metav1.ObjectMeta{Name: "app-demo-generic", Namespace: dedicated, Generation: 1},
		Spec:       appsv1alpha1.DescriptionSpec{Deployer: appsv1alpha1.DescriptionGenericDeployer},
	}
	if _, err := e.client.AppsV1alpha1().Descriptions(dedicated).Get(ctx, desc.Name, metav1.GetOptions{}); err != nil {
		if _, err := e.client.AppsV1alpha1().Descriptions(dedicated).Create(ctx, desc, metav1.CreateOptions{}); err != nil {
			e.t.Fatal(err)
		}
	} else {
		e.deployer.EnqueueNamespace(dedicated)
	}
	e.eventually("the deployer watches the cluster", func() bool { return len(e.deployer.Watching()) == 1 })
	// The Helm pusher takes the cluster's clients for a HelmRelease of its
	// namespace (which it then refuses to apply: no Description made it).
	hr := &appsv1alpha1.HelmRelease{ObjectMeta: metav1.ObjectMeta{Name: "app-demo-mysql", Namespace: dedicated}}
	refused := e.pushed.count("NotVerified")
	if _, err := e.client.AppsV1alpha1().HelmReleases(dedicated).Get(ctx, hr.Name, metav1.GetOptions{}); err != nil {
		if _, err := e.client.AppsV1alpha1().HelmReleases(dedicated).Create(ctx, hr, metav1.CreateOptions{}); err != nil {
			e.t.Fatal(err)
		}
	} else {
		e.pusher.Requeue(dedicated)
	}
	e.eventually("the Helm pusher acts for the cluster", func() bool { return e.pushed.count("NotVerified") > refused })
	c, err := e.reg.Get(clusterID)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := c.Child().Get(ctx, deployer.Ref{APIVersion: "v1", Kind: "Namespace", Name: "default"}); err != nil {
		e.t.Fatalf("reading through the cluster's clients: %v", err)
	}
	want := held{Registry: []string{clusterID}, DeployerWatches: []string{clusterID}, Transports: []string{clusterID}}
	if diff := cmp.Diff(want, e.held()); diff != "" {
		e.t.Fatalf("held while the cluster is used (-want +got):\n%s", diff)
	}
	return c
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// After a cluster leaves (its ManagedCluster deleted, its registration
// deleted or no longer approved), nothing of it is held anywhere in the
// replica: not its clients (the deployer's, Helm's), not the deployer's
// watches, not its tunnel transport. Clients kept past that fail at once.
// When its tunnel merely goes down (a reconnect, or the tunnel moving to
// another replica), the clients and watches go too, but the tunnel
// transport waits for a reconnect. Either way, the same cluster id coming
// back gets fresh clients.
func TestClusterLifecycle(t *testing.T) {
	for _, tc := range []struct {
		name string
		// leave makes the cluster leave; back brings it back.
		leave, back func(e *env)
		// left: the cluster left (rather than its tunnel going down).
		left bool
	}{
		{
			name: "ManagedCluster deleted", left: true,
			leave: func(e *env) {
				if err := e.client.ClustersV1beta1().ManagedClusters(dedicated).Delete(context.Background(), "child-1", metav1.DeleteOptions{}); err != nil {
					e.t.Fatal(err)
				}
			},
			back: func(e *env) {
				if _, err := e.client.ClustersV1beta1().ManagedClusters(dedicated).Create(context.Background(), managedCluster(), metav1.CreateOptions{}); err != nil {
					e.t.Fatal(err)
				}
			},
		},
		{
			name: "registration deleted", left: true,
			leave: func(e *env) {
				if err := e.client.ClustersV1beta1().ClusterRegistrationRequests().Delete(context.Background(), registration().Name, metav1.DeleteOptions{}); err != nil {
					e.t.Fatal(err)
				}
			},
			back: func(e *env) {
				if _, err := e.client.ClustersV1beta1().ClusterRegistrationRequests().Create(context.Background(), registration(), metav1.CreateOptions{}); err != nil {
					e.t.Fatal(err)
				}
			},
		},
		{
			name: "registration no longer approved", left: true,
			leave: func(e *env) {
				crr := registration()
				denied := clusterv1beta1.RequestDenied
				crr.Status.Result = &denied
				if _, err := e.client.ClustersV1beta1().ClusterRegistrationRequests().Update(context.Background(), crr, metav1.UpdateOptions{}); err != nil {
					e.t.Fatal(err)
				}
			},
			back: func(e *env) {
				if _, err := e.client.ClustersV1beta1().ClusterRegistrationRequests().Update(context.Background(), registration(), metav1.UpdateOptions{}); err != nil {
					e.t.Fatal(err)
				}
			},
		},
		{
			name: "tunnel down (reconnecting, or moved to another replica)",
			leave: func(e *env) {
				e.tunnels.Remove(clusterID, e.session)
			},
			back: func(e *env) {
				e.session = e.agent.connect(e.t, e.tunnels)
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			first := e.use()

			tc.leave(e)
			want := held{}
			if !tc.left {
				want.Transports = []string{clusterID} // kept for a reconnect
			}
			e.eventually("nothing held of the cluster", func() bool { return cmp.Equal(want, e.held(), cmpopts.EquateEmpty()) })
			if !closed(first.Done()) {
				t.Error("the clients of the cluster were not marked done")
			}
			if _, err := e.reg.Get(clusterID); err == nil {
				t.Error("the registry handed out clients of a cluster that is not there")
			}
			if tc.left {
				_, err := first.Child().Get(context.Background(), deployer.Ref{APIVersion: "v1", Kind: "Namespace", Name: "default"})
				wantErr := "cluster " + clusterID + " left (its ManagedCluster or registration is gone): its clients are closed"
				if err == nil || !strings.Contains(err.Error(), wantErr) {
					t.Errorf("a request through the clients of a cluster that left: %v, want %q", err, wantErr)
				}
				if diff := cmp.Diff(held{}, e.held(), cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("held after a request through the old clients (-want +got):\n%s", diff)
				}
			}

			tc.back(e)
			e.eventually("the cluster is reachable again", func() bool { _, err := e.reg.Get(clusterID); return err == nil })
			again := e.use()
			if again == first || again.Child() == first.Child() || again.Helm() == first.Helm() || again.Discovery() == first.Discovery() {
				t.Error("the cluster that came back got the clients it had before")
			}
			if closed(again.Done()) {
				t.Error("the fresh clients are marked done")
			}
		})
	}
}

// The deployer and Helm reach a cluster the same way: one configuration
// (the tunnel transport, as the agent) and one discovery, so a request of
// either reuses the tunnel stream the other opened.
func TestDeployerAndHelmShareOneWayIn(t *testing.T) {
	e := newEnv(t)
	c, err := e.reg.Get(clusterID)
	if err != nil {
		t.Fatal(err)
	}
	child, done, err := e.reg.Child(clusterID)
	if err != nil {
		t.Fatal(err)
	}
	h, err := e.reg.Helm(clusterID)
	if err != nil {
		t.Fatal(err)
	}
	if child != c.Child() || done != c.Done() || h != c.Helm() {
		t.Fatal("the registry handed out clients of another Cluster than Get's")
	}
	getter, err := h.Getter("default")
	if err != nil {
		t.Fatal(err)
	}
	helmConfig, err := getter.ToRESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	helmDiscovery, err := getter.ToDiscoveryClient()
	if err != nil {
		t.Fatal(err)
	}
	if helmConfig.Transport != c.Config().Transport || helmConfig.Host != c.Config().Host {
		t.Errorf("Helm's configuration (%s, %T) is not the cluster's (%s)", helmConfig.Host, helmConfig.Transport, c.Config().Host)
	}
	if helmDiscovery != c.Discovery() || child.Mapper != c.Mapper() {
		t.Error("the deployer and Helm do not share the cluster's discovery")
	}

	ctx := context.Background()
	if _, err := child.Get(ctx, deployer.Ref{APIVersion: "v1", Kind: "Namespace", Name: "default"}); err != nil {
		t.Fatal(err)
	}
	helmDiscovery.Invalidate() // Helm rediscovers: through the same stream
	if _, err := helmDiscovery.ServerGroups(); err != nil {
		t.Fatal(err)
	}
	requests, conns := e.agent.take()
	for _, r := range requests {
		if !strings.HasPrefix(r, "agent ") {
			t.Errorf("request %q was not sent as the cluster's agent", r)
		}
	}
	if !containsAll(requests, "agent /api/v1/namespaces/default", "agent /apis") {
		t.Errorf("requests %q: want the deployer's read and Helm's discovery", requests)
	}
	if conns != 1 {
		t.Errorf("%d tunnel streams opened for %d requests made one after another; want 1, shared", conns, len(requests))
	}
	if diff := cmp.Diff([]string{clusterID}, e.transports.Held()); diff != "" {
		t.Errorf("tunnel transports (-want +got):\n%s", diff)
	}
}

func containsAll(have []string, want ...string) bool {
	set := map[string]bool{}
	for _, h := range have {
		set[h] = true
	}
	for _, w := range want {
		if !set[w] {
			return false
		}
	}
	return true
}

// The registry builds no clients for a cluster it would never drop: one
// that is not registered, or whose tunnel is elsewhere.
func TestGetRefusesUnreachableClusters(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepare func(e *env)
		wantErr string
	}{
		{name: "no registration", wantErr: "cluster " + clusterID + " has no approved registration",
			prepare: func(e *env) {
				if err := e.client.ClustersV1beta1().ClusterRegistrationRequests().Delete(context.Background(), registration().Name, metav1.DeleteOptions{}); err != nil {
					e.t.Fatal(err)
				}
			}},
		{name: "no ManagedCluster", wantErr: "cluster " + clusterID + " has no ManagedCluster in namespace clusternet-abcde, which it was admitted into",
			prepare: func(e *env) {
				if err := e.client.ClustersV1beta1().ManagedClusters(dedicated).Delete(context.Background(), "child-1", metav1.DeleteOptions{}); err != nil {
					e.t.Fatal(err)
				}
			}},
		{name: "tunnel elsewhere", wantErr: "cluster " + clusterID + "'s tunnel is not held by this replica",
			prepare: func(e *env) { e.tunnels.Remove(clusterID, e.session) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			tc.prepare(e)
			var err error
			e.eventually("Get refuses", func() bool { _, err = e.reg.Get(clusterID); return err != nil })
			if err.Error() != tc.wantErr {
				t.Errorf("Get: %v, want %q", err, tc.wantErr)
			}
			if got := e.reg.Held(); len(got) != 0 {
				t.Errorf("held %v", got)
			}
		})
	}
}

// countingRecorder counts the events recorded, by reason.
type countingRecorder struct {
	mu      sync.Mutex
	reasons map[string]int
}

func (r *countingRecorder) Event(_ runtime.Object, _, reason, _ string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reasons == nil {
		r.reasons = map[string]int{}
	}
	r.reasons[reason]++
}

func (r *countingRecorder) Eventf(obj runtime.Object, eventtype, reason, _ string, _ ...any) {
	r.Event(obj, eventtype, reason, "")
}

func (r *countingRecorder) AnnotatedEventf(obj runtime.Object, _ map[string]string, eventtype, reason, _ string, _ ...any) {
	r.Event(obj, eventtype, reason, "")
}

func (r *countingRecorder) count(reason string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reasons[reason]
}
