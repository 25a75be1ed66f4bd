package ha

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/server/hub/certs"
	"github.com/clusternet/clusternet/pkg/server/hub/peers"
	"github.com/clusternet/clusternet/test/e2e/e2eutil"
	"github.com/clusternet/clusternet/test/framework"
	"github.com/clusternet/clusternet/test/testbed"
)

const (
	hubNamespace = "clusternet-system"
	// controllersLease is the leader election Lease (hub.go).
	controllersLease = "clusternet-hub"
	replicas         = 3
)

func proxyPath(id string) string {
	return "/apis/proxies.clusternet.io/v1alpha1/sockets/" + id + "/proxy/direct/api/v1/namespaces"
}

// entry is one way into the hubs: through the parent (its aggregator, the
// balancer, any replica) or straight to one replica.
type entry struct {
	name   string
	host   string
	client *http.Client
}

func (e entry) get(ctx context.Context, path string, header http.Header) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.host+path, nil)
	if err != nil {
		return 0, "", err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// namespaces asks cluster id's apiserver for its namespaces through e.
func (e entry) namespaces(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	code, body, err := e.get(ctx, proxyPath(id), nil)
	if err != nil {
		return fmt.Errorf("through %s: %w", e.name, err)
	}
	if code != http.StatusOK || !strings.Contains(body, `"kind":"NamespaceList"`) {
		return fmt.Errorf("through %s: %d %.300s", e.name, code, body)
	}
	return nil
}

func httpClient(t *testing.T, cfg *rest.Config) *http.Client {
	t.Helper()
	c, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.Timeout = 15 * time.Second
	return c
}

// replicaConfig is cfg pointed straight at replica port, trusting the
// hubs' serving CA.
func replicaConfig(cfg *rest.Config, port int, servingCA []byte) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.Host = "https://127.0.0.1:" + strconv.Itoa(port)
	cfg.CAFile, cfg.CAData = "", servingCA
	return cfg
}

func TestReplicas(t *testing.T) {
	tb := testbed.ForTest(t, 2)
	parent := tb.Parent
	ctx := context.Background()
	setUpCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if err := framework.InstallParent(setUpCtx, parent); err != nil {
		t.Fatal(err)
	}
	hubs, err := framework.StartHubs(setUpCtx, t.TempDir(), framework.InDir(t.TempDir()), parent, e2eutil.Bin("hub"), replicas)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- hubs ---\n%s", hubs.LogTail(6000))
		}
		hubs.Stop()
	})
	kube, err := parent.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	parentCfg, err := parent.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}

	var servingCA []byte
	t.Run("the hubs manage the serving certificate and every caBundle", func(t *testing.T) {
		s, err := kube.CoreV1().Secrets(hubNamespace).Get(ctx, certs.DefaultServingSecret, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		servingCA = s.Data[certs.KeyCACert]
		want := base64.StdEncoding.EncodeToString(servingCA)
		for _, name := range []string{"v1alpha1.proxies.clusternet.io", "v1alpha1.shadow"} {
			got := e2eutil.MustKubectl(t, parent, "", "get", "apiservice", name, "-o", "jsonpath={.spec.caBundle} {.spec.insecureSkipTLSVerify}")
			if got != want+" " && got != want+" false" {
				t.Errorf("APIService %s: caBundle and insecureSkipTLSVerify = %.60q..., want the hubs' CA and no insecureSkipTLSVerify", name, got)
			}
		}
		e2eutil.WaitFor(t, 30*time.Second, "the webhook's caBundle is the hubs' CA", func(context.Context) (bool, string) {
			got, _, _ := e2eutil.Kubectl(t, parent, "", "get", "validatingwebhookconfiguration", "clusternet-hub-subscriptions", "-o", "jsonpath={.webhooks[*].clientConfig.caBundle}")
			return got == want, got
		})
	})
	if servingCA == nil {
		t.FailNow()
	}

	// The tunnels and the controllers' lease on one replica: register the
	// children while the balancer sends everything to the leader.
	leader := leaderReplica(t, kube, hubs)
	addrs := make([]string, replicas)
	for i, h := range hubs.Replicas {
		addrs[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(h.Port))
	}
	hubs.Balancer.SetBackends(addrs[leader])
	children := e2eutil.RegisterChildren(t, parent, tb.Children, func(int) []string { return []string{"--cluster-sync-mode=Dual"} })
	hubs.Balancer.SetBackends(addrs...)
	ids := []string{children[0].ID, children[1].ID}
	for _, c := range children {
		if err := framework.GrantParentAdmin(setUpCtx, c.Cluster); err != nil {
			t.Fatal(err)
		}
		waitTunnelLease(t, kube, c.ID, hubs.Replicas[leader].Pid)
	}

	entries := []entry{{name: "the parent", host: parent.URL, client: httpClient(t, parentCfg)}}
	for i, h := range hubs.Replicas {
		entries = append(entries, entry{name: fmt.Sprintf("replica %d", i), host: "https://127.0.0.1:" + strconv.Itoa(h.Port),
			client: httpClient(t, replicaConfig(parentCfg, h.Port, servingCA))})
	}
	other := (leader + 1) % replicas // a replica without tunnels, alive to the end

	t.Run("1,000 proxy requests spread over the replicas and both clusters all succeed", func(t *testing.T) {
		var failed atomic.Int32
		var mu sync.Mutex
		var firstErrs []string
		var wg sync.WaitGroup
		next := atomic.Int32{}
		start := time.Now()
		for range 8 {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= 1000 {
						return
					}
					if err := entries[i%len(entries)].namespaces(ctx, ids[(i/len(entries))%2]); err != nil {
						failed.Add(1)
						mu.Lock()
						if len(firstErrs) < 5 {
							firstErrs = append(firstErrs, err.Error())
						}
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
		t.Logf("1,000 requests in %s", time.Since(start).Round(time.Millisecond))
		if n := failed.Load(); n != 0 {
			t.Errorf("%d of 1,000 requests failed, first: %s", n, strings.Join(firstErrs, "\n"))
		}
	})

	t.Run("forwarding headers without a peer certificate are not trusted", func(t *testing.T) {
		e2eutil.MustKubectl(t, parent, "", "create", "serviceaccount", "ha-intruder", "-n", "default")
		token := strings.TrimSpace(e2eutil.MustKubectl(t, parent, "", "create", "token", "ha-intruder", "-n", "default"))
		cfg := replicaConfig(&rest.Config{BearerToken: token}, hubs.Replicas[other].Port, servingCA)
		intruder := entry{name: "a ServiceAccount", host: cfg.Host, client: httpClient(t, cfg)}
		code, body, err := intruder.get(ctx, proxyPath(ids[0]), http.Header{
			"X-Remote-User": {framework.AdminUser}, "X-Remote-Group": {"system:masters"}, peers.ForwardedHeader: {"hub-x"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if code != http.StatusForbidden || !strings.Contains(body, `User \"system:serviceaccount:default:ha-intruder\" cannot get resource \"sockets/proxy\"`) {
			t.Errorf("the ServiceAccount claiming to be the admin: %d %s\nwant 403 for the ServiceAccount itself", code, body)
		}
	})

	peerCA := peerCAFromSecret(t, kube)
	t.Run("a peer certificate from another CA is refused", func(t *testing.T) {
		ca, err := certs.NewCA("not-the-hubs", time.Now(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		code, body := asPeer(t, ca, hubs.Replicas[other].Port, servingCA, proxyPath(ids[0]))
		if code != http.StatusUnauthorized {
			t.Errorf("a peer certificate from another CA: %d %s, want 401", code, body)
		}
	})
	t.Run("control: a peer certificate from the hubs' CA is trusted", func(t *testing.T) {
		// Sent to the tunnel's holder, as a replica forwards.
		code, body := asPeer(t, peerCA, hubs.Replicas[leader].Port, servingCA, proxyPath(ids[0]))
		if code != http.StatusOK || !strings.Contains(body, "NamespaceList") {
			t.Errorf("a real peer forwarding the admin: %d %.300s, want 200", code, body)
		}
	})
	t.Run("a forwarded request is not forwarded again", func(t *testing.T) {
		// At a replica without the tunnel it waits for one here, and fails.
		code, body := asPeer(t, peerCA, hubs.Replicas[other].Port, servingCA, proxyPath(ids[0]))
		if code == http.StatusOK || !strings.Contains(body, "no tunnel") {
			t.Errorf("a forwarded request at a replica without the tunnel: %d %.300s, want a no-tunnel error", code, body)
		}
	})

	cs := e2eutil.ClusternetClient(t, parent)
	deploy := func(t *testing.T, name string) {
		t.Helper()
		for _, c := range children {
			cm := fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":%q,"namespace":"default"},"data":{"from":"the hub"}}`, name)
			d := e2eutil.GenericDescription(c, name, []byte(cm))
			if _, err := cs.AppsV1alpha1().Descriptions(c.Namespace).Create(ctx, d, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range children {
			e2eutil.WaitFor(t, 60*time.Second, "Description "+name+" pushed into "+c.Cluster.Name, func(ctx context.Context) (bool, string) {
				d, err := cs.AppsV1alpha1().Descriptions(c.Namespace).Get(ctx, name+appsv1alpha1.DescriptionGenericSuffix, metav1.GetOptions{})
				if err != nil {
					return false, err.Error()
				}
				return d.Status.Phase == appsv1alpha1.DescriptionPhaseSuccess && d.Status.ObservedGeneration == d.Generation, string(d.Status.Phase)
			})
			// The hub records its event after the status, through an
			// asynchronous broadcaster: a replica killed in between loses
			// it by design (events are best effort). Wait for it, so the
			// count checked at the end says how often it was applied.
			desc := name + appsv1alpha1.DescriptionGenericSuffix
			e2eutil.WaitFor(t, 30*time.Second, "the SuccessfullyDeployed event of "+desc+" in "+c.Namespace, func(context.Context) (bool, string) {
				evs := e2eutil.Events(t, parent, c.Namespace, "Description", desc, "SuccessfullyDeployed")
				return len(evs) > 0, strings.Join(evs, "; ")
			})
		}
	}
	t.Run("a Description pushed before the kill", func(t *testing.T) { deploy(t, "ha-before") })

	before, err := kube.CoordinationV1().Leases(hubNamespace).Get(ctx, controllersLease, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// Kill the replica holding both tunnels and the controllers' lease.
	killed := hubs.Replicas[leader]
	if err := syscall.Kill(killed.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	kill := time.Now()
	survivors := []entry{entries[0]}
	for i := range replicas {
		if i != leader {
			survivors = append(survivors, entries[1+i])
		}
	}

	t.Run("every request from 5 s after the kill succeeds", func(t *testing.T) {
		type result struct {
			at  time.Duration
			err error
		}
		var mu sync.Mutex
		var results []result
		var wg sync.WaitGroup
		n := atomic.Int32{}
		for range 4 {
			wg.Go(func() {
				for time.Since(kill) < 15*time.Second {
					i := int(n.Add(1))
					at := time.Since(kill)
					err := survivors[i%len(survivors)].namespaces(ctx, ids[(i/len(survivors))%2])
					mu.Lock()
					results = append(results, result{at, err})
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		var early, late int
		var lastEarlyFailure time.Duration
		for _, r := range results {
			switch {
			case r.err == nil:
			case r.at < 5*time.Second:
				early++
				lastEarlyFailure = max(lastEarlyFailure, r.at)
			default:
				late++
				if late <= 5 {
					t.Errorf("request started %s after the kill failed: %v", r.at.Round(time.Millisecond), r.err)
				}
			}
		}
		t.Logf("%d requests in the 15 s after the kill; %d failed in the first 5 s (the last started %s after), %d later",
			len(results), early, lastEarlyFailure.Round(time.Millisecond), late)
		if len(results) < 50 {
			t.Errorf("only %d requests in 15 s: the test did not load the survivors", len(results))
		}
	})

	t.Run("the tunnels moved to the survivors", func(t *testing.T) {
		for _, id := range ids {
			l, err := kube.CoordinationV1().Leases(hubNamespace).Get(ctx, peers.LeasePrefix+id, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if h := ptr.Deref(l.Spec.HolderIdentity, ""); strings.HasSuffix(h, "_"+strconv.Itoa(killed.Pid)) {
				t.Errorf("tunnel Lease of %s still held by the killed replica %s", id, h)
			}
		}
	})

	t.Run("the controllers' lease moved exactly once", func(t *testing.T) {
		var after *coordinationLease
		e2eutil.WaitFor(t, 30*time.Second, "a survivor holding "+controllersLease, func(context.Context) (bool, string) {
			after = getLease(t, kube)
			return after.holder != ptr.Deref(before.Spec.HolderIdentity, ""), after.holder
		})
		// Let a few renewals pass: a lease that bounced would show it.
		time.Sleep(3 * time.Second)
		after = getLease(t, kube)
		if want := ptr.Deref(before.Spec.LeaseTransitions, 0) + 1; after.transitions != want {
			t.Errorf("leaseTransitions = %d, want %d (one move)", after.transitions, want)
		}
		if strings.HasSuffix(after.holder, "_"+strconv.Itoa(killed.Pid)) {
			t.Errorf("holder %s is the killed replica", after.holder)
		}
	})

	t.Run("a Description pushed after the kill", func(t *testing.T) { deploy(t, "ha-after") })

	t.Run("no Description was applied twice", func(t *testing.T) {
		for _, c := range children {
			for _, name := range []string{"ha-before", "ha-after"} {
				desc := name + appsv1alpha1.DescriptionGenericSuffix
				evs := e2eutil.Events(t, parent, c.Namespace, "Description", desc, "SuccessfullyDeployed")
				want := []string{"Normal|SuccessfullyDeployed|clusternet-hub|1|Description " + c.Namespace + "/" + desc + " is deployed successfully"}
				if !slices.Equal(evs, want) {
					t.Errorf("SuccessfullyDeployed events of %s/%s:\n%s\nwant exactly:\n%s", c.Namespace, desc, strings.Join(evs, "\n"), want[0])
				}
			}
		}
	})
}

// leaderReplica waits for a replica to hold the controllers' lease and
// returns its index.
func leaderReplica(t *testing.T, kube kubernetes.Interface, hubs *framework.Hubs) int {
	t.Helper()
	leader := -1
	e2eutil.WaitFor(t, 30*time.Second, "a replica holding "+controllersLease, func(context.Context) (bool, string) {
		l := getLease(t, kube)
		for i, h := range hubs.Replicas {
			if strings.HasSuffix(l.holder, "_"+strconv.Itoa(h.Pid)) {
				leader = i
				return true, ""
			}
		}
		return false, l.holder
	})
	return leader
}

type coordinationLease struct {
	holder      string
	transitions int32
}

func getLease(t *testing.T, kube kubernetes.Interface) *coordinationLease {
	t.Helper()
	l, err := kube.CoordinationV1().Leases(hubNamespace).Get(context.Background(), controllersLease, metav1.GetOptions{})
	if err != nil {
		return &coordinationLease{}
	}
	return &coordinationLease{holder: ptr.Deref(l.Spec.HolderIdentity, ""), transitions: ptr.Deref(l.Spec.LeaseTransitions, 0)}
}

func waitTunnelLease(t *testing.T, kube kubernetes.Interface, id string, pid int) {
	t.Helper()
	e2eutil.WaitFor(t, 30*time.Second, "tunnel Lease of "+id+" held by pid "+strconv.Itoa(pid), func(ctx context.Context) (bool, string) {
		l, err := kube.CoordinationV1().Leases(hubNamespace).Get(ctx, peers.LeasePrefix+id, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		h := ptr.Deref(l.Spec.HolderIdentity, "")
		return strings.HasSuffix(h, "_"+strconv.Itoa(pid)) && l.Annotations[peers.AnnotationAddress] != "", h
	})
}

func peerCAFromSecret(t *testing.T, kube kubernetes.Interface) *certs.CA {
	t.Helper()
	var s *corev1.Secret
	s, err := kube.CoreV1().Secrets(hubNamespace).Get(context.Background(), peers.DefaultCASecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ca, err := certs.ParseCA(s.Data[certs.KeyCACert], s.Data[certs.KeyCAKey])
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// asPeer asks replica port for path as a replica would forward the
// parent's admin: a client certificate for peers.PeerName from ca and the
// admin's identity in X-Remote-* headers.
func asPeer(t *testing.T, ca *certs.CA, port int, servingCA []byte, path string) (int, string) {
	t.Helper()
	certPEM, keyPEM, err := ca.Issue(certs.Leaf{CommonName: peers.PeerName, Client: true}, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(servingCA)
	client := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: roots, MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil },
	}}}
	e := entry{name: "a peer", host: "https://127.0.0.1:" + strconv.Itoa(port), client: client}
	code, body, err := e.get(context.Background(), path, http.Header{
		"X-Remote-User": {framework.AdminUser}, "X-Remote-Group": {"system:masters", "system:authenticated"}, peers.ForwardedHeader: {"test"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return code, body
}
