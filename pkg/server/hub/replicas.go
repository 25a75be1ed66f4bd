package hub

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apiserver/pkg/authentication/request/union"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/klog/v2"

	"github.com/clusternet/clusternet/pkg/server/hub/certs"
	"github.com/clusternet/clusternet/pkg/server/hub/peers"
	"github.com/clusternet/clusternet/pkg/server/hub/sockets"
)

// ReplicaOptions are the flags of several replicas working together
// (docs/tunnel.md) and of the certificates the hub manages itself.
type ReplicaOptions struct {
	// PeerAdvertiseAddress is host:port where the other replicas reach
	// this one; empty means the bind address (or, when that is
	// unspecified, this host's default interface) and the secure port.
	PeerAdvertiseAddress string
	// PeerCACertFile and PeerCAKeyFile are the hub-internal CA; empty
	// means the Secret the hub makes (peers.DefaultCASecret).
	PeerCACertFile, PeerCAKeyFile string
	// PeerLeaseDuration is how long a tunnel Lease lasts unrenewed.
	PeerLeaseDuration time.Duration
	// SelfSignedCerts makes the hub, when --tls-cert-file is not given,
	// keep its own CA and serving certificate in a Secret and the caBundle
	// of its APIServices and webhook current.
	SelfSignedCerts bool
	// ServingCertNames are the DNS names (and IPs) of the serving
	// certificate the hub makes.
	ServingCertNames []string
}

func defaultReplicaOptions() ReplicaOptions {
	return ReplicaOptions{PeerLeaseDuration: peers.DefaultLeaseDuration, SelfSignedCerts: true}
}

// managedAPIServices and managedWebhooks are what the hub's CA bundle is
// written into (deploy/hub/apiservice.yaml, deploy/hub/webhook.yaml).
var (
	managedAPIServices = []string{"v1alpha1.proxies.clusternet.io", "v1alpha1.shadow"}
	managedWebhooks    = []string{"clusternet-hub-subscriptions"}
)

func (o *Options) addReplicaFlags(fss *cliflag.NamedFlagSets) {
	fs := fss.FlagSet("replicas and certificates")
	r := &o.Replicas
	fs.StringVar(&r.PeerAdvertiseAddress, "peer-advertise-address", r.PeerAdvertiseAddress,
		"host:port where the other hub replicas reach this one to forward requests for the tunnels it holds (in a pod: its IP and the secure port). Empty means --bind-address (or this host's default interface when that is unspecified) and --secure-port.")
	fs.StringVar(&r.PeerCACertFile, "peer-ca-cert-file", r.PeerCACertFile,
		"PEM CA certificate replicas authenticate each other with (with --peer-ca-key-file). Empty means the CA in Secret "+peers.DefaultCASecret+" of the hub's namespace (--leader-elect-resource-namespace), which the first replica makes.")
	fs.StringVar(&r.PeerCAKeyFile, "peer-ca-key-file", r.PeerCAKeyFile, "PEM key of --peer-ca-cert-file: each replica issues its own peer certificate with it.")
	fs.DurationVar(&r.PeerLeaseDuration, "peer-lease-duration", r.PeerLeaseDuration,
		"How long a tunnel Lease (socket-<cluster-id>) lasts unrenewed; the holder renews it every third of this. A replica that died is no longer forwarded to once its agents reconnected elsewhere, at the latest after this.")
	fs.BoolVar(&r.SelfSignedCerts, "self-signed-certs", r.SelfSignedCerts,
		"Without --tls-cert-file: keep a CA (1 year) and serving certificate (90 days) in Secret "+certs.DefaultServingSecret+" of the hub's namespace, shared by all replicas, rotate each at two thirds of its life, and keep the caBundle of APIServices v1alpha1.proxies.clusternet.io and v1alpha1.shadow and of ValidatingWebhookConfiguration clusternet-hub-subscriptions current. false: an in-memory certificate per process (one replica, development only).")
	fs.StringSliceVar(&r.ServingCertNames, "serving-cert-names", r.ServingCertNames,
		"DNS names and IPs of the serving certificate the hub makes (--self-signed-certs). Empty means clusternet-hub.<namespace>.svc, clusternet-hub.<namespace>.svc.cluster.local, localhost and 127.0.0.1.")
}

func (o *Options) validateReplicas() []error {
	var errs []error
	r := o.Replicas
	if (r.PeerCACertFile == "") != (r.PeerCAKeyFile == "") {
		errs = append(errs, fmt.Errorf("--peer-ca-cert-file %q and --peer-ca-key-file %q: set both or neither", r.PeerCACertFile, r.PeerCAKeyFile))
	}
	if r.PeerLeaseDuration < 3*time.Second {
		errs = append(errs, fmt.Errorf("--peer-lease-duration %s: must be at least 3s", r.PeerLeaseDuration))
	}
	if a := r.PeerAdvertiseAddress; a != "" {
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
			errs = append(errs, fmt.Errorf("--peer-advertise-address %q: must be host:port, e.g. 10.0.0.7:6443", a))
		}
	}
	return errs
}

// replicaIdentity names this process among the replicas: the pod name in a
// Deployment, and the process id.
func replicaIdentity() (string, error) {
	host, err := os.Hostname()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s_%d", host, os.Getpid()), nil
}

// peerAddress is where the other replicas reach this one.
func (o *Options) peerAddress() (string, error) {
	if a := o.Replicas.PeerAdvertiseAddress; a != "" {
		return a, nil
	}
	ss := o.Recommended.SecureServing
	ip := ss.BindAddress
	if ip == nil || ip.IsUnspecified() {
		chosen, err := utilnet.ResolveBindAddress(ip)
		if err != nil {
			return "", fmt.Errorf("--peer-advertise-address is empty and no address of this host was found: %w", err)
		}
		ip = chosen
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(ss.BindPort)), nil
}

// peering is what the API server needs to work with the other replicas and
// serve the managed certificate.
type peering struct {
	tls       *peers.TLS
	forwarder *peers.Forwarder
	serving   *certs.Serving // nil when serving --tls-cert-file
}

// startPeering loads the peer CA, starts the tunnel Leases and, in
// --self-signed-certs mode, the serving certificate; wg holds until the
// Leases were released after ctx ended.
func (o *Options) startPeering(ctx context.Context, c *Context, wg *sync.WaitGroup) (*peering, error) {
	ns := o.LeaderElectNamespace
	ca, err := peers.LoadCA(ctx, c.Kube.CoreV1(), ns, o.Replicas.PeerCACertFile, o.Replicas.PeerCAKeyFile)
	if err != nil {
		return nil, err
	}
	peerTLS, err := peers.NewTLS(ca)
	if err != nil {
		return nil, fmt.Errorf("peer certificate: %w", err)
	}
	identity, err := replicaIdentity()
	if err != nil {
		return nil, err
	}
	addr, err := o.peerAddress()
	if err != nil {
		return nil, err
	}
	leases := peers.NewLeases(peers.Options{Kube: c.Kube, Namespace: ns, Identity: identity, Address: addr,
		LeaseDuration: o.Replicas.PeerLeaseDuration}, c.Transports.Tunnels())
	wg.Go(func() { leases.Run(ctx) })
	klog.FromContext(ctx).Info("Recording this replica's tunnels in Leases", "namespace", ns, "identity", identity, "peerAddress", addr)
	p := &peering{tls: peerTLS, forwarder: peers.NewForwarder(leases, peerTLS)}
	ss := o.Recommended.SecureServing
	if !o.Replicas.SelfSignedCerts || ss.ServerCert.CertKey.CertFile != "" {
		return p, nil
	}
	dnsNames, ips := o.servingCertNames()
	p.serving = certs.NewServing(certs.ServingOptions{
		Kube: c.Kube, Dynamic: c.Dynamic, Namespace: ns, DNSNames: dnsNames, IPs: ips,
		APIServices: managedAPIServices, Webhooks: managedWebhooks,
	})
	if err := p.serving.Sync(ctx); err != nil {
		if cert, _ := p.serving.CurrentCertKeyContent(); len(cert) == 0 {
			return nil, fmt.Errorf("serving certificate: %w", err)
		}
		// Serving works; the caBundles are retried below.
		klog.FromContext(ctx).Error(err, "Publishing the hub's CA bundle")
	}
	wg.Go(func() { p.serving.Run(ctx, servingSyncPeriod) })
	ss.ServerCert.GeneratedCert = p.serving
	return p, nil
}

// servingSyncPeriod is how often each replica checks the serving
// certificate and the caBundles: a rotation another replica made, an
// APIService installed after the hub, or a caBundle someone changed is
// taken care of within it.
const servingSyncPeriod = 10 * time.Second

func (o *Options) servingCertNames() ([]string, []net.IP) {
	names := o.Replicas.ServingCertNames
	if len(names) == 0 {
		svc := "clusternet-hub." + o.LeaderElectNamespace + ".svc"
		names = []string{svc, svc + ".cluster.local", "localhost", "127.0.0.1"}
	}
	var dns []string
	var ips []net.IP
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, n)
		}
	}
	return dns, ips
}

// apply wires the peers into the API server's config: the peer CA among
// the client CAs (so every client is asked for a certificate), the peer
// certificate for server name peers.PeerName, and the authenticator that
// trusts forwarded identities from peers only, ahead of the others.
func (p *peering) apply(config *genericapiserver.RecommendedConfig) error {
	if p == nil {
		return nil
	}
	clientCA, err := p.tls.ClientCA()
	if err != nil {
		return err
	}
	if config.SecureServing.ClientCA != nil {
		clientCA = dynamiccertificates.NewUnionCAContentProvider(config.SecureServing.ClientCA, clientCA)
	}
	config.SecureServing.ClientCA = clientCA
	sni, err := p.tls.ServingCert()
	if err != nil {
		return err
	}
	config.SecureServing.SNICerts = append(config.SecureServing.SNICerts, sni)
	if config.Authentication.Authenticator == nil {
		config.Authentication.Authenticator = p.tls.Authenticator()
	} else {
		config.Authentication.Authenticator = union.New(p.tls.Authenticator(), config.Authentication.Authenticator)
	}
	return nil
}

// proxy makes r forward to the replica holding a tunnel.
func (p *peering) proxy(r *sockets.ProxyREST) *sockets.ProxyREST {
	if p == nil {
		return r
	}
	return r.ForwardTo(p.forwarder)
}
