package agent

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/cert"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
)

// servingCA is a CA and a serving certificate for 127.0.0.1 it signed.
type servingCA struct {
	caPEM []byte
	cert  tls.Certificate
}

func newServingCA(t *testing.T) servingCA {
	t.Helper()
	certPEM, keyPEM, err := cert.GenerateSelfSignedCertKey("127.0.0.1", []net.IP{net.ParseIP("127.0.0.1")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	// The leaf comes first, then the CA that signed it.
	_, rest := pem.Decode(certPEM)
	return servingCA{caPEM: rest, cert: leaf}
}

// rotatingParent is a parent over real TLS whose serving certificate can
// change, as a parent's does when its CA rotates. It serves this cluster's
// ManagedCluster and its registration request with the answer set last,
// to the tokens it accepts.
type rotatingParent struct {
	t       *testing.T
	srv     *httptest.Server
	serving atomic.Pointer[tls.Certificate]

	mu       sync.Mutex
	accepted map[string]bool
	answer   *clusterv1beta1.ClusterRegistrationRequest
}

func newRotatingParent(t *testing.T, serving servingCA) *rotatingParent {
	p := &rotatingParent{t: t, accepted: map[string]bool{}}
	p.serving.Store(&serving.cert)
	p.srv = httptest.NewUnstartedServer(p)
	p.srv.TLS = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		return &tls.Config{Certificates: []tls.Certificate{*p.serving.Load()}}, nil
	}}
	p.srv.StartTLS()
	t.Cleanup(p.srv.Close)
	return p
}

// rotate serves with another certificate from now on, for new connections
// and the ones open (which it closes).
func (p *rotatingParent) rotate(serving servingCA) {
	p.serving.Store(&serving.cert)
	p.srv.CloseClientConnections()
}

func (p *rotatingParent) accept(tokens ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, tok := range tokens {
		p.accepted[tok] = true
	}
}

func (p *rotatingParent) answerWith(crr *clusterv1beta1.ClusterRegistrationRequest) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.answer = crr
}

func (p *rotatingParent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.accepted[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")] {
		http.Error(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Unauthorized","code":401}`, http.StatusUnauthorized)
		return
	}
	var obj any
	switch r.URL.Path {
	case "/apis/clusters.clusternet.io/v1beta1/namespaces/clusternet-abcde/managedclusters/edge-1":
		obj = &clusterv1beta1.ManagedCluster{
			TypeMeta:   metav1.TypeMeta{APIVersion: "clusters.clusternet.io/v1beta1", Kind: "ManagedCluster"},
			ObjectMeta: metav1.ObjectMeta{Name: "edge-1", Namespace: "clusternet-abcde", ResourceVersion: "1"},
		}
	case "/apis/clusters.clusternet.io/v1beta1/clusterregistrationrequests/" + clusterv1beta1.NamePrefix + testClusterID:
		crr := p.answer.DeepCopy()
		crr.TypeMeta = metav1.TypeMeta{APIVersion: "clusters.clusternet.io/v1beta1", Kind: "ClusterRegistrationRequest"}
		obj = crr
	default:
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(obj); err != nil {
		p.t.Error(err)
	}
}

// renewWith has the hub renew agent's token to token, answering with
// bundle, and the agent pick it up as it does past half the token's life.
func renewWith(t *testing.T, ctx context.Context, a *Agent, p *rotatingParent, token string, bundle []byte) {
	t.Helper()
	crr := answer(t, a, token, a.token.expiresAt().Add(time.Hour))
	crr.Status.CACertificate = bundle
	p.answerWith(crr)
	a.token.mu.Lock()
	a.token.obtained = a.token.expires.Add(-10 * time.Hour)
	a.token.mu.Unlock()
	a.renewToken(ctx)
}

func (a *Agent) readsItsCluster(ctx context.Context) error {
	_, err := a.parent.ClustersV1beta1().ManagedClusters("clusternet-abcde").Get(ctx, "edge-1", metav1.GetOptions{})
	return err
}

func storedCA(t *testing.T, ctx context.Context, a *Agent) string {
	t.Helper()
	creds, err := a.loadCredentials(ctx)
	if err != nil || creds == nil {
		t.Fatalf("stored credentials: %v, %v", creds, err)
	}
	return string(creds.CACertificate)
}

// TestRenewedCABundleReachesRunningClients rotates the parent's CA under a
// running agent, as an admin does: the bundle gains the new CA, the
// parent's serving certificate moves to it, and (later) the bundle drops
// the old one. The agent's clients, built once, follow without a restart;
// a bundle from the hub that does not verify the parent never replaces one
// that does.
func TestRenewedCABundleReachesRunningClients(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	oldCA, newCA, strangerCA := newServingCA(t), newServingCA(t), newServingCA(t)
	both := append(append([]byte{}, oldCA.caPEM...), newCA.caPEM...)
	p := newRotatingParent(t, oldCA)
	p.accept("tok-1", "tok-2", "tok-3", "tok-4", "tok-5")
	a, _ := newTestAgent(t)
	a.parentURL = p.srv.URL
	if err := a.ensureKey(ctx); err != nil {
		t.Fatal(err)
	}
	creds := &Credentials{ParentURL: a.parentURL, ClusterID: testClusterID, Token: []byte("tok-1"), TokenExpiration: time.Now().Add(time.Hour),
		CACertificate: oldCA.caPEM, DedicatedNamespace: "clusternet-abcde", ManagedClusterName: "edge-1"}
	if err := a.useCredentials(ctx, creds); err != nil {
		t.Fatal(err)
	}
	if err := a.readsItsCluster(ctx); err != nil {
		t.Fatal(err)
	}

	// The parent's bundle gains the new CA; its certificate is still the
	// old CA's. The renewal brings the bundle, checked and stored.
	renewWith(t, ctx, a, p, "tok-2", both)
	if got := a.token.get(); got != "tok-2" {
		t.Fatalf("token %q after the renewal, want tok-2", got)
	}
	if got := storedCA(t, ctx, a); got != string(both) {
		t.Errorf("stored CA bundle is not the renewed one:\n%s", got)
	}
	if stored, err := a.loadCredentials(ctx); err != nil || time.Since(stored.TokenObtained) > time.Minute {
		t.Errorf("stored tokenObtained after the renewal: %v, %v; want the renewal's time", stored, err)
	}

	// The parent serves with the new CA's certificate: the clients built
	// before the renewal verify it, and so does the tunnel's next dial.
	p.rotate(newCA)
	if err := a.readsItsCluster(ctx); err != nil {
		t.Fatalf("a client built before the renewal, after the parent's certificate moved to the new CA: %v", err)
	}
	tlsConfig, err := rest.TLSConfigFor(a.credentialsConfig())
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", strings.TrimPrefix(p.srv.URL, "https://"), tlsConfig)
	if err != nil {
		t.Fatalf("the tunnel's TLS configuration, after the parent's certificate moved to the new CA: %v", err)
	}
	_ = conn.Close()

	// A bundle that does not verify the parent (the hub's, when agents
	// reach the parent through a load balancer with its own CA), one that
	// holds no certificate, and none at all (which would mean trusting
	// every public CA): the token is renewed, the bundle kept.
	for _, r := range []struct {
		tok    string
		bundle []byte
	}{{"tok-3", strangerCA.caPEM}, {"tok-4", []byte("not PEM")}, {"tok-5", nil}} {
		tok := r.tok
		renewWith(t, ctx, a, p, tok, r.bundle)
		if got := a.token.get(); got != tok {
			t.Fatalf("token %q after a renewal with a bundle that does not verify the parent, want %s", got, tok)
		}
		if got := storedCA(t, ctx, a); got != string(both) {
			t.Errorf("stored CA bundle after a renewal with one that does not verify the parent:\n%s", got)
		}
		p.rotate(newCA) // new connections, verified with the bundle in use
		if err := a.readsItsCluster(ctx); err != nil {
			t.Fatalf("after a renewal with a bundle that does not verify the parent: %v", err)
		}
	}

	// The check cannot tell (the parent refuses the new token for now):
	// the renewal waits for the next heartbeat.
	renewWith(t, ctx, a, p, "tok-6", newCA.caPEM)
	if got := a.token.get(); got != "tok-5" {
		t.Errorf("token %q after a renewal whose bundle could not be checked, want tok-5 until it can", got)
	}
	p.accept("tok-6")
	renewWith(t, ctx, a, p, "tok-6", newCA.caPEM)
	if got := a.token.get(); got != "tok-6" || storedCA(t, ctx, a) != string(newCA.caPEM) {
		t.Errorf("token %q after the parent answered again, want tok-6 and the new CA stored", got)
	}
	p.rotate(newCA)
	if err := a.readsItsCluster(ctx); err != nil {
		t.Fatalf("with the bundle down to the new CA: %v", err)
	}
	// The old CA is no longer trusted: a parent presenting its
	// certificate is refused.
	p.rotate(oldCA)
	if err := a.readsItsCluster(ctx); !unverified(err) {
		t.Errorf("a certificate of the dropped CA: %v, want it refused as unverified", err)
	}
}

// TestStoredCredentialsAfterTheParentsCARotated: an agent that was away
// while the parent's CA rotated holds a bundle that no longer verifies the
// parent. The CA its admin configures (parentCA, as docs/install.md says)
// lets it keep its credentials; without it, it says what to set.
func TestStoredCredentialsAfterTheParentsCARotated(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	oldCA, newCA := newServingCA(t), newServingCA(t)
	p := newRotatingParent(t, newCA)
	p.accept("tok-1")
	stored := &Credentials{ParentURL: p.srv.URL, ClusterID: testClusterID, Token: []byte("tok-1"), TokenExpiration: time.Now().Add(time.Hour),
		CACertificate: oldCA.caPEM, DedicatedNamespace: "clusternet-abcde", ManagedClusterName: "edge-1"}

	a, _ := newTestAgent(t)
	a.parentURL = p.srv.URL
	err := a.useCredentials(ctx, stored)
	for _, want := range []string{"does not verify", "parentCA", "--parent-ca-file", p.srv.URL} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("without a configured CA: error %v, want one naming %q", err, want)
		}
	}

	// The admin sets parentCA and restarts the agent: it reuses its stored
	// credentials with that CA, and stores it for the next start.
	if err := a.ensureKey(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.storeCredentials(ctx, stored); err != nil {
		t.Fatal(err)
	}
	a.parentCA = newCA.caPEM
	if err := a.register(ctx); err != nil {
		t.Fatalf("with parentCA set to the parent's new CA: %v", err)
	}
	if err := a.readsItsCluster(ctx); err != nil {
		t.Fatal(err)
	}
	if got := string(a.trust.get()); got != string(newCA.caPEM) {
		t.Errorf("bundle in use is not the configured parentCA:\n%s", got)
	}
	if got := storedCA(t, ctx, a); got != string(newCA.caPEM) {
		t.Errorf("stored bundle is still the one that no longer verifies the parent:\n%s", got)
	}
}

// A token's renewal falls due at half its life from when the agent got
// it, restarts or not: counted from a restart, an agent restarted just
// before the hub renewed its token would fetch the renewal (and the
// parent's new CA bundle with it) up to half a life late.
func TestRenewalDueAcrossRestarts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ca := newServingCA(t)
	p := newRotatingParent(t, ca)
	p.accept("tok-1")
	now := time.Now()
	day := 24 * time.Hour
	for _, tc := range []struct {
		name string
		// obtained is the stored tokenObtained ("" for none); the token
		// expires at expires from now; renewal is checked at from now.
		obtained      string
		expires, at   time.Duration
		due           bool
		storedAgainAt bool // the start stores a readable time in place of the stored one
	}{
		{name: "got 4 days into a 7-day life", obtained: now.Add(-4 * day).Format(time.RFC3339), expires: 3 * day, due: true},
		{name: "got a day ago", obtained: now.Add(-day).Format(time.RFC3339), expires: 6 * day, due: false},
		{name: "stored before the agent kept when: counted from the start, and stored", expires: 3 * day, due: false, storedAgainAt: true},
		{name: "unreadable: counted from the start, the credentials kept", obtained: "yesterday", expires: 3 * day, due: false, storedAgainAt: true},
		// A clock set back since: counted from the start, not from a time
		// past the token's end.
		{name: "in the future", obtained: now.Add(10 * day).Format(time.RFC3339), expires: 3 * day, at: 2 * day, due: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, _ := newTestAgent(t)
			a.parentURL = p.srv.URL
			if err := a.ensureKey(ctx); err != nil {
				t.Fatal(err)
			}
			stored := &Credentials{ParentURL: p.srv.URL, ClusterID: testClusterID, Token: []byte("tok-1"),
				TokenExpiration: now.Add(tc.expires), CACertificate: ca.caPEM, DedicatedNamespace: "clusternet-abcde", ManagedClusterName: "edge-1"}
			if err := a.storeCredentials(ctx, stored); err != nil {
				t.Fatal(err)
			}
			if tc.obtained != "" {
				if err := a.writeCredentialsSecret(ctx, map[string][]byte{keyTokenObtained: []byte(tc.obtained)}); err != nil {
					t.Fatal(err)
				}
			}
			if err := a.register(ctx); err != nil {
				t.Fatal(err)
			}
			if got := a.token.renewDue(time.Now().Add(tc.at)); got != tc.due {
				t.Errorf("renewal due %v after the restart: %t, want %t", tc.at, got, tc.due)
			}
			again, err := a.loadCredentials(ctx)
			if err != nil || again == nil {
				t.Fatalf("stored credentials after the start: %v, %v", again, err)
			}
			if tc.storedAgainAt && time.Since(again.TokenObtained) > time.Minute {
				t.Errorf("stored tokenObtained after the start %v, want the start's time", again.TokenObtained)
			}
		})
	}
}

// startReporting catches up at once on what the heartbeat loop would leave
// for a whole period: a renewal that fell due while the agent was down, and
// a first report that failed.
func TestStartReportingCatchesUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ca := newServingCA(t)
	p := newRotatingParent(t, ca) // answers no status write: the first report fails
	p.accept("tok-1", "tok-2")
	child := httptest.NewServer(http.NotFoundHandler()) // a child that answers nothing
	defer child.Close()
	a, fake := newTestAgent(t)
	a.parentURL, a.kick = p.srv.URL, make(chan struct{}, 1)
	a.childCfg = &rest.Config{Host: child.URL}
	disc, err := discovery.NewDiscoveryClientForConfig(a.childCfg)
	if err != nil {
		t.Fatal(err)
	}
	a.child = childWithDiscovery{Clientset: fake, disc: disc}
	if err := a.ensureKey(ctx); err != nil {
		t.Fatal(err)
	}
	obtained := time.Now().Add(-4 * 24 * time.Hour)
	stored := &Credentials{ParentURL: p.srv.URL, ClusterID: testClusterID, Token: []byte("tok-1"), TokenObtained: obtained,
		TokenExpiration: obtained.Add(7 * 24 * time.Hour), CACertificate: ca.caPEM, DedicatedNamespace: "clusternet-abcde", ManagedClusterName: "edge-1"}
	if err := a.storeCredentials(ctx, stored); err != nil {
		t.Fatal(err)
	}
	if err := a.register(ctx); err != nil {
		t.Fatal(err)
	}
	renewed := answer(t, a, "tok-2", stored.TokenExpiration.Add(3*24*time.Hour))
	renewed.Status.CACertificate = ca.caPEM
	p.answerWith(renewed)

	a.startReporting(ctx, 10*time.Millisecond, 50*time.Millisecond)
	if got := a.token.get(); got != "tok-2" {
		t.Errorf("token %q after the start, want the renewal that fell due while the agent was down (tok-2)", got)
	}
	select {
	case <-a.kick:
	case <-time.After(10 * time.Second):
		t.Error("the first report failed and no retry was queued: the hub would wait a whole heartbeat period")
	}
}

// childWithDiscovery is a fake child whose discovery (the heartbeat's
// version and health probes) goes to a real server.
type childWithDiscovery struct {
	*kubefake.Clientset
	disc discovery.DiscoveryInterfaces
}

func (c childWithDiscovery) Discovery() discovery.DiscoveryInterfaces { return c.disc }

// A renewed answer without a bundle is not checked at all: no bundle means
// the system roots, and the agent never trades the parent's CA for them.
// The parent here cannot be reached, so a check would say "cannot tell"
// and hold the renewal back.
func TestRenewedBundleNeverEmpty(t *testing.T) {
	a, _ := newTestAgent(t)
	a.parentURL = "https://127.0.0.1:1"
	inUse := newServingCA(t).caPEM
	a.trust.set(inUse)
	creds := &Credentials{Token: []byte("tok-2"), DedicatedNamespace: "clusternet-abcde", ManagedClusterName: "edge-1"}
	if !a.renewedBundle(context.Background(), creds) {
		t.Fatal("the renewal was held back to check an empty bundle")
	}
	if string(creds.CACertificate) != string(inUse) {
		t.Errorf("renewed credentials carry bundle %q, want the one in use", creds.CACertificate)
	}
}
