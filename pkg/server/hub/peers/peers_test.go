package peers

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clusternet/clusternet/pkg/tunnel/tunneltest"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/yamux"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	testingclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/clusternet/clusternet/pkg/server/hub/certs"
	"github.com/clusternet/clusternet/pkg/tunnel"
)

const ns = "clusternet-system"

// session is the hub's end of a tunnel over an in-memory connection.
func session(t *testing.T) *yamux.Session {
	t.Helper()
	s, _ := tunneltest.Pipe(t)
	return s
}

// withResourceVersions makes the fake parent keep resourceVersions of
// Leases and refuse updates from stale reads, as the real one does.
func withResourceVersions(kube *fake.Clientset) *fake.Clientset {
	var mu sync.Mutex
	rv := 0
	gvr := coordinationv1.SchemeGroupVersion.WithResource("leases")
	kube.PrependReactor("create", "leases", func(a clienttesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		l := a.(clienttesting.CreateAction).GetObject().(*coordinationv1.Lease).DeepCopy()
		rv++
		l.ResourceVersion = strconv.Itoa(rv)
		return true, l, kube.Tracker().Create(gvr, l, l.Namespace)
	})
	kube.PrependReactor("update", "leases", func(a clienttesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		l := a.(clienttesting.UpdateAction).GetObject().(*coordinationv1.Lease).DeepCopy()
		current, err := kube.Tracker().Get(gvr, l.Namespace, l.Name)
		if err != nil {
			return true, nil, err
		}
		if current.(*coordinationv1.Lease).ResourceVersion != l.ResourceVersion {
			return true, nil, apierrors.NewConflict(gvr.GroupResource(), l.Name, errors.New("stale resourceVersion"))
		}
		rv++
		l.ResourceVersion = strconv.Itoa(rv)
		return true, l, kube.Tracker().Update(gvr, l, l.Namespace)
	})
	return kube
}

type replica struct {
	kube    *fake.Clientset
	tunnels *tunnel.Registry
	leases  *Leases
}

func newReplica(t *testing.T, kube *fake.Clientset, identity, addr string, opts ...func(*Options)) *replica {
	t.Helper()
	r := &replica{kube: kube, tunnels: tunnel.NewRegistry()}
	o := Options{Kube: kube, Namespace: ns, Identity: identity, Address: addr, LeaseDuration: 15 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	r.leases = NewLeases(o, r.tunnels)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.leases.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

func getLease(t *testing.T, kube *fake.Clientset, id string) *coordinationv1.Lease {
	t.Helper()
	l, err := kube.CoordinationV1().Leases(ns).Get(context.Background(), LeasePrefix+id, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// waitLease waits until cluster id's Lease satisfies ok.
func waitLease(t *testing.T, kube *fake.Clientset, id, what string, ok func(*coordinationv1.Lease) bool) *coordinationv1.Lease {
	t.Helper()
	var last *coordinationv1.Lease
	err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) {
		last = getLease(t, kube, id)
		return ok(last), nil
	})
	if err != nil {
		t.Fatalf("Lease of %s: want %s, have %+v", id, what, last)
	}
	return last
}

func heldBy(identity string) func(*coordinationv1.Lease) bool {
	return func(l *coordinationv1.Lease) bool {
		return l != nil && ptr.Deref(l.Spec.HolderIdentity, "") == identity
	}
}

func TestLeaseFollowsTheTunnel(t *testing.T) {
	kube := withResourceVersions(fake.NewClientset())
	a := newReplica(t, kube, "hub-a", "10.0.0.1:6443")
	s := session(t)
	a.tunnels.Add("c1", s)
	l := waitLease(t, kube, "c1", "held by hub-a", heldBy("hub-a"))
	if diff := cmp.Diff(map[string]string{AnnotationAddress: "10.0.0.1:6443"}, l.Annotations); diff != "" {
		t.Errorf("annotations (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{LabelSocket: "c1"}, l.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if got := ptr.Deref(l.Spec.LeaseDurationSeconds, 0); got != 15 {
		t.Errorf("leaseDurationSeconds = %d, want 15", got)
	}
	a.tunnels.Remove("c1", s)
	waitLease(t, kube, "c1", "released", func(l *coordinationv1.Lease) bool { return l == nil })
}

func TestNewestTunnelWins(t *testing.T) {
	kube := withResourceVersions(fake.NewClientset())
	a := newReplica(t, kube, "hub-a", "10.0.0.1:6443")
	b := newReplica(t, kube, "hub-b", "10.0.0.2:6443")
	old := session(t)
	a.tunnels.Add("c1", old)
	waitLease(t, kube, "c1", "held by hub-a", heldBy("hub-a"))

	// The agent reconnects to b before a noticed its tunnel died: b takes
	// the Lease over at once, unexpired as it is ...
	b.tunnels.Add("c1", session(t))
	l := waitLease(t, kube, "c1", "held by hub-b", heldBy("hub-b"))
	if got := ptr.Deref(l.Spec.LeaseTransitions, 0); got != 1 {
		t.Errorf("leaseTransitions = %d, want 1", got)
	}
	if got, err := b.leases.Locate(context.Background(), "c1"); got != "" || err != nil {
		t.Errorf("b finds c1's tunnel at %q (%v), want here", got, err)
	}
	// ... a, at its next renewal, sees the newer tunnel and closes its own
	// (force the renewal instead of waiting 5 s).
	a.leases.queue.Add("c1")
	if err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) {
		return old.IsClosed(), nil
	}); err != nil {
		t.Fatal("the older tunnel in hub-a was not closed")
	}
	// ... and releasing it does not touch b's Lease; a forwards to b.
	waitLease(t, kube, "c1", "still held by hub-b", heldBy("hub-b"))
	if err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) {
		return a.leases.Holder("c1") == "10.0.0.2:6443", nil
	}); err != nil {
		t.Errorf("a finds c1's tunnel at %q, want hub-b's address", a.leases.Holder("c1"))
	}
}

func withClock(c *testingclock.FakeClock) func(*Options) {
	return func(o *Options) { o.Clock = c }
}

// waitFor waits until ok, failing with what.
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) {
		return ok(), nil
	}); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// renewedAt waits until identity's replica Lease says it was renewed at.
func renewedAt(t *testing.T, kube *fake.Clientset, identity string, at time.Time) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%s's replica Lease renewed at %s", identity, at), func() bool {
		l, err := kube.CoordinationV1().Leases(ns).Get(context.Background(), ReplicaLeaseName(identity), metav1.GetOptions{})
		return err == nil && l.Spec.RenewTime != nil && l.Spec.RenewTime.Time.Equal(at)
	})
}

// leaseWrites counts the creates, updates and deletes of the Leases named
// name among actions.
func leaseWrites(actions []clienttesting.Action, name string) int {
	n := 0
	for _, a := range actions {
		if a.GetResource().Resource != "leases" {
			continue
		}
		switch a.GetVerb() {
		case "create", "update":
			if a.(interface{ GetObject() runtime.Object }).GetObject().(*coordinationv1.Lease).Name == name {
				n++
			}
		case "delete":
			if a.(clienttesting.DeleteAction).GetName() == name {
				n++
			}
		}
	}
	return n
}

// TestAtRestOnlyReplicaLeasesAreWritten holds tunnels over three lease
// durations: their Leases are not written once, they stay valid for the
// other replica, and each replica's own Lease is renewed every third of the
// duration.
func TestAtRestOnlyReplicaLeasesAreWritten(t *testing.T) {
	clk := testingclock.NewFakeClock(time.Now())
	kube := withResourceVersions(fake.NewClientset())
	a := newReplica(t, kube, "hub-a", "10.0.0.1:6443", withClock(clk))
	b := newReplica(t, kube, "hub-b", "10.0.0.2:6443", withClock(clk))
	const clusters = 20
	for i := range clusters {
		a.tunnels.Add(fmt.Sprintf("c%d", i), session(t))
	}
	for i := range clusters {
		waitLease(t, kube, fmt.Sprintf("c%d", i), "held by hub-a", heldBy("hub-a"))
	}
	renewedAt(t, kube, "hub-a", clk.Now())
	waitFor(t, "hub-b to find every tunnel at hub-a", func() bool {
		for i := range clusters {
			if b.leases.Holder(fmt.Sprintf("c%d", i)) != "10.0.0.1:6443" {
				return false
			}
		}
		return true
	})

	start := len(kube.Actions())
	const renewals = 9
	for range renewals {
		clk.Step(5 * time.Second)
		renewedAt(t, kube, "hub-a", clk.Now())
		renewedAt(t, kube, "hub-b", clk.Now())
	}
	actions := kube.Actions()[start:]
	for i := range clusters {
		id := fmt.Sprintf("c%d", i)
		if n := leaseWrites(actions, LeasePrefix+id); n != 0 {
			t.Errorf("Lease of %s written %d times at rest, want 0", id, n)
		}
		if got := b.leases.Holder(id); got != "10.0.0.1:6443" {
			t.Errorf("after %s at rest hub-b finds %s at %q, want hub-a's address", 9*5*time.Second, id, got)
		}
	}
	if n := leaseWrites(actions, ReplicaLeaseName("hub-a")); n != renewals {
		t.Errorf("hub-a's replica Lease written %d times in %d renewal periods, want %d", n, renewals, renewals)
	}
}

// TestHolderLivesByItsReplicaLease: a tunnel Lease is as live as its
// holder's replica Lease, whenever the tunnel Lease was written; one whose
// holder has no replica Lease (a replica of the previous version) is as
// live as its own renewal.
func TestHolderLivesByItsReplicaLease(t *testing.T) {
	now := time.Now()
	clk := testingclock.NewFakeClock(now)
	socketLease := func(written time.Time) *coordinationv1.Lease {
		l := heldLease("c1", "hub-b", "10.0.0.8:6443")
		l.Spec.AcquireTime, l.Spec.RenewTime = &metav1.MicroTime{Time: written}, &metav1.MicroTime{Time: written}
		return l
	}
	replicaLease := func(renewed time.Time) *coordinationv1.Lease {
		return &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: ReplicaLeaseName("hub-b"), Labels: map[string]string{LabelReplica: "true"},
				Annotations: map[string]string{AnnotationAddress: "10.0.0.9:6443"}},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("hub-b"), LeaseDurationSeconds: ptr.To(int32(15)),
				AcquireTime: &metav1.MicroTime{Time: renewed.Add(-time.Hour)}, RenewTime: &metav1.MicroTime{Time: renewed}},
		}
	}
	for _, tc := range []struct {
		name        string
		leases      []*coordinationv1.Lease
		unreachable bool
		want        string
	}{
		{"replica Lease renewed, tunnel Lease written long ago", []*coordinationv1.Lease{socketLease(now.Add(-time.Hour)), replicaLease(now)}, false, "10.0.0.9:6443"},
		{"replica Lease expired, tunnel Lease just written", []*coordinationv1.Lease{socketLease(now), replicaLease(now.Add(-16 * time.Second))}, false, ""},
		{"replica Lease renewed before a dial to it failed", []*coordinationv1.Lease{socketLease(now.Add(-time.Hour)), replicaLease(now.Add(-time.Second))}, true, ""},
		{"replica Lease renewed after a dial to it failed", []*coordinationv1.Lease{socketLease(now.Add(-time.Hour)), replicaLease(now.Add(time.Second))}, true, "10.0.0.9:6443"},
		{"previous version: no replica Lease, tunnel Lease renewed", []*coordinationv1.Lease{socketLease(now)}, false, "10.0.0.8:6443"},
		{"previous version: no replica Lease, tunnel Lease expired", []*coordinationv1.Lease{socketLease(now.Add(-16 * time.Second))}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kube := fake.NewClientset()
			for _, l := range tc.leases {
				if err := kube.Tracker().Add(l); err != nil {
					t.Fatal(err)
				}
			}
			r := newReplica(t, kube, "hub-a", "10.0.0.1:6443", withClock(clk))
			waitFor(t, "the Leases in hub-a's caches", func() bool {
				for _, l := range tc.leases {
					if !cached(r, l) {
						return false
					}
				}
				return true
			})
			if tc.unreachable {
				r.leases.Unreachable("10.0.0.9:6443")
			}
			if got := r.leases.Holder("c1"); got != tc.want {
				t.Errorf("Holder = %q, want %q", got, tc.want)
			}
		})
	}
}

// cached says whether r's caches hold l.
func cached(r *replica, l *coordinationv1.Lease) bool {
	lister := r.leases.sockets
	if l.Labels[LabelReplica] != "" {
		lister = r.leases.replicas
	}
	_, err := lister.Get(l.Name)
	return err == nil
}

// TestANewerTunnelElsewhereTakesOver: the replica whose tunnel was replaced
// closes it as soon as the other one took the Lease over, with no renewal
// to notice it by, and the Lease is not written again.
func TestANewerTunnelElsewhereTakesOver(t *testing.T) {
	clk := testingclock.NewFakeClock(time.Now())
	kube := withResourceVersions(fake.NewClientset())
	a := newReplica(t, kube, "hub-a", "10.0.0.1:6443", withClock(clk))
	b := newReplica(t, kube, "hub-b", "10.0.0.2:6443", withClock(clk))
	old := session(t)
	a.tunnels.Add("c1", old)
	waitLease(t, kube, "c1", "held by hub-a", heldBy("hub-a"))

	waitFor(t, "hub-b to find c1's tunnel at hub-a", func() bool { return b.leases.Holder("c1") == "10.0.0.1:6443" })

	// The agent reconnects to b a second later, before a noticed its
	// tunnel died.
	clk.Step(time.Second)
	b.tunnels.Add("c1", session(t))
	l := waitLease(t, kube, "c1", "held by hub-b", heldBy("hub-b"))
	if got := ptr.Deref(l.Spec.LeaseTransitions, 0); got != 1 {
		t.Errorf("leaseTransitions = %d, want 1", got)
	}
	waitFor(t, "hub-a to close its older tunnel", old.IsClosed)
	waitFor(t, "hub-a to find c1's tunnel at hub-b", func() bool { return a.leases.Holder("c1") == "10.0.0.2:6443" })

	start := len(kube.Actions())
	for range 6 {
		clk.Step(5 * time.Second)
		renewedAt(t, kube, "hub-b", clk.Now())
	}
	if got := a.leases.Holder("c1"); got != "10.0.0.2:6443" {
		t.Errorf("after two lease durations hub-a finds c1's tunnel at %q, want hub-b's address", got)
	}
	if n := leaseWrites(kube.Actions()[start:], LeasePrefix+"c1"); n != 0 {
		t.Errorf("c1's Lease written %d times after the takeover, want 0", n)
	}
}

func TestHolderSkipsExpiredAndUnreachable(t *testing.T) {
	now := time.Now()
	lease := func(renewed time.Time) *coordinationv1.Lease {
		return &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: LeasePrefix + "c1", Labels: map[string]string{LabelSocket: "c1"},
				Annotations: map[string]string{AnnotationAddress: "10.0.0.9:6443"}},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("hub-dead"), LeaseDurationSeconds: ptr.To(int32(15)),
				AcquireTime: &metav1.MicroTime{Time: renewed}, RenewTime: &metav1.MicroTime{Time: renewed}},
		}
	}
	for _, tc := range []struct {
		name        string
		lease       *coordinationv1.Lease
		unreachable bool
		want        string
	}{
		{"live holder", lease(now), false, "10.0.0.9:6443"},
		{"expired holder", lease(now.Add(-16 * time.Second)), false, ""},
		{"holder a dial failed to since its last renewal", lease(now.Add(-time.Second)), true, ""},
		{"this replica's predecessor at the same address", lease(now), false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kube := fake.NewClientset(tc.lease)
			addr := "10.0.0.1:6443"
			if strings.Contains(tc.name, "predecessor") {
				addr = "10.0.0.9:6443"
			}
			r := newReplica(t, kube, "hub-a", addr)
			if tc.unreachable {
				r.leases.Unreachable("10.0.0.9:6443")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			got, err := r.leases.Locate(ctx, "c1")
			if got != tc.want || (tc.want == "" && !errors.Is(err, ErrNoTunnel)) {
				t.Errorf("Locate = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// peerServer is a replica's API server as far as peers see it: TLS with the
// peer certificate for PeerName, every client asked for a certificate, and
// the peer authenticator. It answers with who it authenticated and the path.
func peerServer(t *testing.T, p *TLS) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		resp, ok, err := p.Authenticator().AuthenticateRequest(req)
		out := map[string]any{"path": req.URL.Path, "query": req.URL.RawQuery, "authorization": req.Header.Get("Authorization"),
			"impersonate": req.Header.Get("Impersonate-User"), "forwardedBy": req.Header.Get(ForwardedHeader)}
		switch {
		case err != nil:
			out["error"] = err.Error()
		case ok:
			out["user"] = resp.User.GetName()
			out["groups"] = resp.User.GetGroups()
			out["extra"] = resp.User.GetExtra()
		}
		_ = json.NewEncoder(w).Encode(out)
	}))
	pair, err := tls.X509KeyPair(p.certPEM, p.keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequestClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func newTLS(t *testing.T) (*TLS, *certs.CA) {
	t.Helper()
	ca, err := certs.NewCA("test-peer-ca", time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewTLS(ca)
	if err != nil {
		t.Fatal(err)
	}
	return p, ca
}

// heldLease is cluster id's tunnel Lease, held now by replica holder,
// which serves at addr.
func heldLease(id, holder, addr string) *coordinationv1.Lease {
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: LeasePrefix + id, Labels: map[string]string{LabelSocket: id},
			Annotations: map[string]string{AnnotationAddress: addr}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(holder), LeaseDurationSeconds: ptr.To(int32(15)),
			AcquireTime: &metav1.MicroTime{Time: time.Now()}, RenewTime: &metav1.MicroTime{Time: time.Now()}},
	}
}

func TestForwardCarriesTheCallerAndOnlyPeersAreTrusted(t *testing.T) {
	p, ca := newTLS(t)
	holder := peerServer(t, p)
	addr := strings.TrimPrefix(holder.URL, "https://")
	kube := fake.NewClientset(heldLease("c1", "hub-b", addr))
	a := newReplica(t, kube, "hub-a", "10.0.0.1:6443")
	fwd := NewForwarder(a.leases, p)
	defer fwd.CloseIdle()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	got, err := fwd.Locate(ctx, "c1")
	if err != nil || got != addr {
		t.Fatalf("Locate = %q, %v; want %q", got, err, addr)
	}

	caller := &user.DefaultInfo{Name: "alice", Groups: []string{"dev", "system:authenticated"}, Extra: map[string][]string{"scopes.example.com/a b": {"x"}}}
	req := httptest.NewRequest(http.MethodGet, "/apis/proxies.clusternet.io/v1alpha1/sockets/c1/proxy/direct/api/v1/namespaces?limit=1", nil)
	// Whatever the caller sent as identity must not travel.
	req.Header.Set("Authorization", "Bearer alice-token")
	req.Header.Set("Impersonate-User", "admin")
	req.Header.Set("X-Remote-User", "mallory")
	req.Header.Set("X-Remote-Group", "system:masters")
	w := httptest.NewRecorder()
	if err := fwd.Forward(w, req, got, "c1", "direct/api/v1/namespaces", caller, errorResponder{t}); err != nil {
		t.Fatalf("Forward() = %v", err)
	}
	var out map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatalf("holder answered %d %q: %v", w.Code, w.Body.String(), err)
	}
	want := map[string]any{
		"path": "/apis/proxies.clusternet.io/v1alpha1/sockets/c1/proxy/direct/api/v1/namespaces", "query": "limit=1",
		"authorization": "", "impersonate": "", "forwardedBy": "hub-a",
		"user": "alice", "groups": []any{"dev", "system:authenticated"}, "extra": map[string]any{"scopes.example.com/a b": []any{"x"}},
	}
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("what the holder saw (-want +got):\n%s", diff)
	}

	t.Run("forwarding headers without a peer certificate are not trusted", func(t *testing.T) {
		pool := p.ca
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: PeerName}}}
		out := get(t, client, holder.URL, map[string]string{"X-Remote-User": "admin", "X-Remote-Group": "system:masters"})
		if diff := cmp.Diff(map[string]any(nil), pick(out, "user", "error")); diff != "" {
			t.Errorf("a client without a certificate was authenticated (-want +got):\n%s", diff)
		}
	})
	t.Run("a peer certificate from another CA is refused", func(t *testing.T) {
		other, _ := newTLS(t)
		cfg := other.ClientConfig()
		cfg.RootCAs = p.ca // it knows whom it talks to; its own certificate is what fails
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
		out := get(t, client, holder.URL, map[string]string{"X-Remote-User": "admin"})
		if out["user"] != nil || !strings.Contains(out["error"].(string), "x509") {
			t.Errorf("a certificate from another CA: holder saw %v, want an x509 refusal", out)
		}
	})
	t.Run("a client certificate of the peer CA for another name is refused", func(t *testing.T) {
		certPEM, keyPEM, err := ca.Issue(certs.Leaf{CommonName: "someone-else", Client: true}, time.Now(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.ca, ServerName: PeerName, Certificates: []tls.Certificate{pair}}}}
		out := get(t, client, holder.URL, map[string]string{"X-Remote-User": "admin"})
		if out["user"] != nil || !strings.Contains(fmt.Sprint(out["error"]), "someone-else") {
			t.Errorf("a peer-CA certificate for another name: holder saw %v, want a refusal naming it", out)
		}
	})
}

// get does one request and decodes the holder's JSON answer.
func get(t *testing.T, client *http.Client, url string, headers map[string]string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url+"/x", nil)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func pick(m map[string]any, keys ...string) map[string]any {
	var out map[string]any
	for _, k := range keys {
		if v, ok := m[k]; ok {
			if out == nil {
				out = map[string]any{}
			}
			out[k] = v
		}
	}
	return out
}

type errorResponder struct{ t *testing.T }

func (e errorResponder) Error(_ http.ResponseWriter, _ *http.Request, err error) {
	e.t.Errorf("forwarding failed: %v", err)
}

func TestForwardStreamsUpgrades(t *testing.T) {
	p, _ := newTLS(t)
	// The holder: for its peer only, switches protocols and echoes.
	holder := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		resp, ok, err := p.Authenticator().AuthenticateRequest(req)
		if err != nil || !ok || resp.User.GetName() != "alice" || req.Header.Get("Upgrade") != "echo" {
			http.Error(w, fmt.Sprintf("not a forwarded upgrade from alice: %v %v", ok, err), http.StatusForbidden)
			return
		}
		conn, rw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		_ = rw.Flush()
		buf := make([]byte, 4)
		if _, err := io.ReadFull(rw, buf); err == nil {
			_, _ = conn.Write(buf)
		}
	}))
	pair, err := tls.X509KeyPair(p.certPEM, p.keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	holder.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequestClientCert}
	holder.StartTLS()
	defer holder.Close()
	addr := strings.TrimPrefix(holder.URL, "https://")

	kube := fake.NewClientset()
	a := newReplica(t, kube, "hub-a", "10.0.0.1:6443")
	fwd := NewForwarder(a.leases, p)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if err := fwd.Forward(w, req, addr, "c1", "direct/exec", &user.DefaultInfo{Name: "alice"}, errorResponder{t}); err != nil {
			t.Errorf("Forward() = %v", err)
		}
	}))
	defer front.Close()

	conn, err := net.Dial("tcp", strings.TrimPrefix(front.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, "GET /x HTTP/1.1\r\nHost: hub\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("upgrade through the forwarder: %s %s", resp.Status, body)
	}
	if _, err := io.WriteString(conn, "ping"); err != nil {
		t.Fatal(err)
	}
	echo := make([]byte, 4)
	if _, err := io.ReadFull(br, echo); err != nil || string(echo) != "ping" {
		t.Errorf("echo through the upgraded stream: %q, %v", echo, err)
	}
}

// TestForwardToADeadPeer dials a Lease's address where nothing listens (a
// replica just SIGKILLed): nothing reaches the caller, the error says the
// peer is unreachable, and the address is skipped from then on.
func TestForwardToADeadPeer(t *testing.T) {
	p, _ := newTLS(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	kube := fake.NewClientset(heldLease("c1", "hub-b", dead))
	a := newReplica(t, kube, "hub-a", "10.0.0.1:6443")
	fwd := NewForwarder(a.leases, p)
	defer fwd.CloseIdle()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if got, err := fwd.Locate(ctx, "c1"); err != nil || got != dead {
		t.Fatalf("Locate = %q, %v; want %q", got, err, dead)
	}

	for _, upgrade := range []bool{false, true} {
		t.Run(fmt.Sprintf("upgrade=%v", upgrade), func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/x", nil)
			if upgrade {
				req.Header.Set("Connection", "Upgrade")
				req.Header.Set("Upgrade", "SPDY/3.1")
			}
			w := httptest.NewRecorder()
			err := fwd.Forward(w, req, dead, "c1", "direct/api", &user.DefaultInfo{Name: "alice"}, errorResponder{t})
			if !errors.Is(err, ErrPeerUnreachable) || !strings.Contains(err.Error(), dead) {
				t.Errorf("Forward() = %v, want ErrPeerUnreachable naming %s", err, dead)
			}
			if w.Body.Len() != 0 || len(w.Header()) != 0 {
				t.Errorf("written to the caller: %v %q", w.Header(), w.Body.String())
			}
			if req.Header.Get(ForwardedHeader) != "" || req.Header.Get("X-Remote-User") != "" {
				t.Errorf("the caller's request was changed: %v", req.Header)
			}
		})
	}

	ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if got, err := fwd.Locate(ctx, "c1"); got != "" || !errors.Is(err, ErrNoTunnel) {
		t.Errorf("Locate after the dial failed = %q, %v; want the dead peer skipped", got, err)
	}
}

// A hub restarted in its container keeps its identity (host and pid 1): the
// tunnel Leases its predecessor held are released, not kept alive by the
// new process's replica Lease, unless the tunnel came back here.
func TestRestartReleasesInheritedTunnelLeases(t *testing.T) {
	kube := withResourceVersions(fake.NewClientset(heldLease("gone", "hub-a", "10.0.0.1:6443"), heldLease("back", "hub-a", "10.0.0.1:6443"),
		heldLease("elsewhere", "hub-b", "10.0.0.2:6443")))
	a := newReplica(t, kube, "hub-a", "10.0.0.1:6443")
	a.tunnels.Add("back", session(t))
	waitLease(t, kube, "gone", "released", func(l *coordinationv1.Lease) bool { return l == nil })
	waitLease(t, kube, "back", "held by hub-a from the new tunnel", func(l *coordinationv1.Lease) bool {
		return heldBy("hub-a")(l) && l.Spec.AcquireTime != nil && time.Since(l.Spec.AcquireTime.Time) < 5*time.Second
	})
	if !heldBy("hub-b")(getLease(t, kube, "elsewhere")) {
		t.Errorf("another replica's tunnel Lease was touched: %+v", getLease(t, kube, "elsewhere"))
	}
}

// replicaLease is the Lease of replica identity as it last renewed it at.
func replicaLease(identity, addr string, at time.Time) *coordinationv1.Lease {
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: ReplicaLeaseName(identity), Labels: map[string]string{LabelReplica: "true"},
			Annotations: map[string]string{AnnotationAddress: addr}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(identity), LeaseDurationSeconds: ptr.To(int32(15)),
			AcquireTime: &metav1.MicroTime{Time: at}, RenewTime: &metav1.MicroTime{Time: at}},
	}
}

// The Lease of a replica gone for two lease durations is deleted; one that
// renewed within them is not. A live replica whose Lease was deleted
// meanwhile (it could not reach the parent for that long) makes it again
// at its next renewal, not one later.
func TestReplicaLeasesCollectedAndRemade(t *testing.T) {
	clk := testingclock.NewFakeClock(time.Now().Truncate(time.Second))
	kube := withResourceVersions(fake.NewClientset(
		replicaLease("hub-old", "10.0.0.9:6443", clk.Now().Add(-31*time.Second)),
		replicaLease("hub-late", "10.0.0.8:6443", clk.Now().Add(-20*time.Second))))
	a := newReplica(t, kube, "hub-a", "10.0.0.1:6443", withClock(clk))
	renewedAt(t, kube, "hub-a", clk.Now())
	exists := func(identity string) bool {
		_, err := kube.CoordinationV1().Leases(ns).Get(context.Background(), ReplicaLeaseName(identity), metav1.GetOptions{})
		return err == nil
	}
	waitFor(t, "hub-old's Lease deleted", func() bool { return !exists("hub-old") })
	if !exists("hub-late") {
		t.Error("a replica Lease expired for less than a lease duration more was deleted")
	}
	if !exists("hub-a") {
		t.Error("hub-a deleted its own Lease")
	}

	// Another replica collects hub-a's Lease; hub-a still holds a tunnel.
	a.tunnels.Add("c1", session(t))
	waitLease(t, kube, "c1", "held by hub-a", heldBy("hub-a"))
	if err := kube.CoordinationV1().Leases(ns).Delete(context.Background(), ReplicaLeaseName("hub-a"), metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	clk.Step(5 * time.Second)
	renewedAt(t, kube, "hub-a", clk.Now())
}
