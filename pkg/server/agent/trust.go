package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
)

// parentTrust is the CA bundle the agent verifies the parent with. The hub
// hands the parent's bundle out with every token, so a renewal brings a new
// one when the parent's CA rotates. Every parent client looks it up per
// connection, as it looks the token up per request: the new bundle reaches
// the informers, the heartbeat and the next tunnel dial without rebuilding
// them, and without a restart, which a rotation that later drops the old CA
// would otherwise need on every child.
type parentTrust struct {
	mu sync.Mutex
	ca []byte
}

func (t *parentTrust) set(ca []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ca = ca
}

func (t *parentTrust) get() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ca
}

// trustingTransport sends each request over a transport that verifies the
// parent with the bundle in use. A new bundle makes new connections with it
// at once. Connections already open (the watches) stay until they end: they
// were verified when made, and a rotation keeps the old CA valid meanwhile.
type trustingTransport struct {
	trust *parentTrust
	// build makes a transport that verifies the parent with ca.
	build func(ca []byte) (http.RoundTripper, error)

	mu sync.Mutex
	ca []byte
	rt http.RoundTripper
}

func (t *trustingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rt, err := t.current()
	if err != nil {
		if req.Body != nil {
			_ = req.Body.Close() // a RoundTripper closes the body, even when it fails
		}
		return nil, err
	}
	return rt.RoundTrip(req)
}

// WrappedRoundTripper lets client-go reach the transport underneath to
// cancel a request.
func (t *trustingTransport) WrappedRoundTripper() http.RoundTripper {
	rt, _ := t.current()
	return rt
}

func (t *trustingTransport) current() (http.RoundTripper, error) {
	ca := t.trust.get()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.rt != nil && bytes.Equal(ca, t.ca) {
		return t.rt, nil
	}
	rt, err := t.build(ca)
	if err != nil {
		return nil, fmt.Errorf("the parent's CA bundle: %w", err)
	}
	if t.rt != nil {
		// client-go's transports wrap the http.Transport (to collect
		// unused ones): this reaches it through the wrapping.
		utilnet.CloseIdleConnectionsFor(t.rt)
	}
	t.ca, t.rt = ca, rt
	return rt, nil
}

// parentTransport is the one transport of every parent client.
func (a *Agent) parentTransport() *trustingTransport {
	a.transportOnce.Do(func() { a.transport = &trustingTransport{trust: &a.trust, build: a.transportFor} })
	return a.transport
}

// transportFor is a transport that verifies the parent with ca (the system
// roots when ca is empty), without credentials: the token is added above it.
func (a *Agent) transportFor(ca []byte) (http.RoundTripper, error) {
	return rest.TransportFor(&rest.Config{Host: a.parentURL, TLSClientConfig: rest.TLSClientConfig{CAData: ca}})
}

// readOwnCluster reads this cluster's ManagedCluster with creds alone (their
// token and CA bundle): what proves credentials work before they are used.
func (a *Agent) readOwnCluster(ctx context.Context, creds *Credentials) (*clusterv1beta1.ManagedCluster, error) {
	cs, err := versioned.NewForConfig(a.parentConfig(string(creds.Token), creds.CACertificate))
	if err != nil {
		return nil, err
	}
	return cs.ClustersV1beta1().ManagedClusters(creds.DedicatedNamespace).Get(ctx, creds.ManagedClusterName, metav1.GetOptions{})
}

// unverified says err is the parent's certificate failing verification
// with the bundle used.
func unverified(err error) bool {
	var verr *tls.CertificateVerificationError
	var unknown x509.UnknownAuthorityError
	return errors.As(err, &verr) || errors.As(err, &unknown)
}

// usable says ca holds at least one PEM certificate.
func usable(ca []byte) bool {
	return x509.NewCertPool().AppendCertsFromPEM(ca)
}

// renewedBundle settles the CA bundle that renewed credentials carry on
// with. The hub's answer holds the parent's bundle as it is now; the agent
// moves to it once it has verified the parent with it (and the new token),
// so a bundle that does not verify the parent at this agent's URL (a load
// balancer with its own CA, configured as parentCA) never replaces one that
// does. ok is false when the check could not tell (the parent did not
// answer): the renewal waits for the next heartbeat, with the token in use
// still valid for half its life.
func (a *Agent) renewedBundle(ctx context.Context, creds *Credentials) (ok bool) {
	inUse := a.trust.get()
	if bytes.Equal(creds.CACertificate, inUse) {
		return true
	}
	logger := klog.FromContext(ctx)
	switch {
	case len(creds.CACertificate) == 0:
		// No bundle would mean the system roots: trusting every public
		// CA in place of the parent's own is never an upgrade.
		logger.Info("The renewed credentials carry no CA bundle; keeping the bundle in use")
		creds.CACertificate = inUse
		return true
	case !usable(creds.CACertificate):
		logger.Error(nil, "The renewed credentials' CA bundle holds no PEM certificate; keeping the bundle in use")
		creds.CACertificate = inUse
		return true
	}
	_, err := a.readOwnCluster(ctx, creds)
	switch {
	case err == nil:
		return true
	case unverified(err):
		// Expected where agents reach the parent through a load balancer
		// with a CA of its own (parentCA): not an error.
		logger.Info("The renewed credentials' CA bundle does not verify the parent at this agent's URL; keeping the bundle in use", "reason", err.Error())
		creds.CACertificate = inUse
		return true
	default:
		logger.Error(err, "Checking the parent with its new CA bundle; will retry", "expires", a.token.expiresAt())
		return false
	}
}
