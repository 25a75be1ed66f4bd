package agent

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/proxy"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/clusternet/clusternet/pkg/tunnel/wire"
)

// systemMasters is Kubernetes' superuser group, which no authorizer checks.
const systemMasters = "system:masters"

// childProxy serves the hub's requests inside the tunnel: it sends each to
// the child (or another host the agent may dial) as the caller.
type childProxy struct {
	child   *url.URL
	allowed map[string]bool
	// appPusher is the agent's AppPusher gate: off, the hub may not act in
	// this child as the agent (push applications); callers' requests still pass.
	appPusher bool

	// own carries the agent's credentials: used only towards the child apiserver.
	own        http.RoundTripper
	ownUpgrade proxy.UpgradeRequestRoundTripper
	// anon verifies the child's TLS but presents no credentials of the agent's.
	anon      *http.Transport
	anonTLS   *tls.Config
	certMu    sync.Mutex
	certCache map[[32]byte]*http.Transport
}

func newChildProxy(childCfg *rest.Config, allowedHosts []string, appPusher bool) (*childProxy, error) {
	child, err := url.Parse(childCfg.Host)
	if err != nil {
		return nil, err
	}
	if child.Scheme == "" {
		child, err = url.Parse("https://" + childCfg.Host)
		if err != nil {
			return nil, err
		}
	}
	tlsConfig, err := rest.TLSConfigFor(childCfg)
	if err != nil {
		return nil, err
	}
	base := newTransport(tlsConfig)
	own, err := rest.HTTPWrappersForConfig(childCfg, base)
	if err != nil {
		return nil, err
	}
	mirror, err := rest.HTTPWrappersForConfig(childCfg, proxy.MirrorRequest)
	if err != nil {
		return nil, err
	}
	anonTLS, err := rest.TLSConfigFor(rest.AnonymousClientConfig(childCfg))
	if err != nil {
		return nil, err
	}
	p := &childProxy{
		child:      child,
		appPusher:  appPusher,
		allowed:    map[string]bool{child.Host: true},
		own:        own,
		ownUpgrade: proxy.NewUpgradeRequestRoundTripper(base, mirror),
		anon:       newTransport(anonTLS),
		anonTLS:    anonTLS,
		certCache:  map[[32]byte]*http.Transport{},
	}
	for _, h := range allowedHosts {
		p.allowed[h] = true
	}
	return p, nil
}

// newTransport pools connections to the child: the hub reuses tunnel
// streams, and the agent reuses TLS connections, end to end.
func newTransport(tlsConfig *tls.Config) *http.Transport {
	return utilnet.SetTransportDefaults(&http.Transport{
		TLSClientConfig:     tlsConfig,
		MaxIdleConnsPerHost: 256,
		DisableCompression:  true, // content encoding passes through untouched
	})
}

func (p *childProxy) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	id := wire.TakeIdentity(req.Header)
	wire.ExplicitEncoding(req.Header)
	req.Header.Del("Authorization")
	for k := range req.Header {
		if strings.HasPrefix(strings.ToLower(k), "impersonate-") {
			req.Header.Del(k)
		}
	}
	target, err := wire.ParseTarget(req.URL.Path)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	loc := &url.URL{Scheme: target.Scheme, Host: target.Host, Path: target.Path, RawQuery: req.URL.RawQuery}
	if target.Scheme == "direct" {
		loc.Scheme, loc.Host = p.child.Scheme, p.child.Host
		loc.Path = strings.TrimSuffix(p.child.Path, "/") + target.Path
	}
	if !p.allowed[loc.Host] {
		http.Error(w, fmt.Sprintf("this cluster's agent does not dial %q: it reaches only its own apiserver %q unless started with --proxy-allowed-hosts", loc.Host, p.child.Host), http.StatusForbidden)
		return
	}
	ownAPIServer := loc.Host == p.child.Host && loc.Scheme == p.child.Scheme

	var transport http.RoundTripper
	var upgrade proxy.UpgradeRequestRoundTripper
	switch {
	case id.Agent:
		if !ownAPIServer {
			http.Error(w, fmt.Sprintf("the hub may act as this agent only towards its own apiserver %q, not %q", p.child.Host, loc.Host), http.StatusForbidden)
			return
		}
		if !p.appPusher {
			http.Error(w, "this cluster's agent runs with --feature-gates=AppPusher=false: the parent may not push applications here; the agent applies them itself (Pull)", http.StatusForbidden)
			return
		}
		transport, upgrade = p.own, p.ownUpgrade
	case id.Token != "":
		req.Header.Set("Authorization", "Bearer "+id.Token)
		transport, upgrade = p.anon, proxy.NewUpgradeRequestRoundTripper(p.anon, proxy.MirrorRequest)
	case id.Certificate != "":
		t, err := p.certTransport(id.Certificate, id.PrivateKey)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		transport, upgrade = t, proxy.NewUpgradeRequestRoundTripper(t, proxy.MirrorRequest)
	case !ownAPIServer:
		// Another host gets no credentials of the agent's: only what the caller passed.
		transport, upgrade = p.anon, proxy.NewUpgradeRequestRoundTripper(p.anon, proxy.MirrorRequest)
	default:
		if id.User == "" {
			http.Error(w, "the hub sent no caller identity", http.StatusForbidden)
			return
		}
		// The hub decides who the child sees (and never sends system:masters:
		// its mapping file refuses it). Defence in depth, should a hub be
		// wrong: system:masters bypasses this cluster's authorization, so no
		// parent user gets it here through the proxy; this cluster's admin
		// grants parent users rights with RBAC bindings instead.
		if slices.Contains(id.Groups, systemMasters) {
			http.Error(w, fmt.Sprintf("this cluster's agent does not impersonate group %q for parent user %q: it would bypass this cluster's RBAC; bind a mapped group to cluster-admin here instead (docs/tunnel.md)",
				systemMasters, id.User), http.StatusForbidden)
			return
		}
		req.Header.Set("Impersonate-User", id.User)
		if id.UID != "" {
			req.Header.Set("Impersonate-Uid", id.UID)
		}
		for _, g := range id.Groups {
			req.Header.Add("Impersonate-Group", g)
		}
		for k, vs := range id.Extra {
			for _, v := range vs {
				req.Header.Add("Impersonate-Extra-"+wire.EscapeExtraKey(k), v)
			}
		}
		transport, upgrade = p.own, p.ownUpgrade
	}
	if loc.Scheme == "http" {
		transport = http.DefaultTransport
		upgrade = nil
	}
	h := proxy.NewUpgradeAwareHandler(loc, transport, false, false, errorResponder{})
	h.UpgradeTransport = upgrade
	h.UseLocationHost = true
	h.ServeHTTP(w, req)
}

// certTransport presents the caller's client certificate (base64 PEM, as the
// kubeconfig of upstream Clusternet's README carries it). Transports are cached per certificate so
// repeated requests reuse their TLS connections.
func (p *childProxy) certTransport(certB64, keyB64 string) (*http.Transport, error) {
	certPEM, err := base64.StdEncoding.DecodeString(certB64)
	if err != nil {
		return nil, fmt.Errorf("user extra %s is not base64: %w", wire.ExtraCertificate, err)
	}
	keyPEM, err := base64.StdEncoding.DecodeString(keyB64)
	if err != nil {
		return nil, fmt.Errorf("user extra %s is not base64: %w", wire.ExtraPrivateKey, err)
	}
	key := sha256.Sum256(append(append([]byte{}, certPEM...), keyPEM...))
	p.certMu.Lock()
	defer p.certMu.Unlock()
	if t, ok := p.certCache[key]; ok {
		return t, nil
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("user extras %s and %s are not a certificate and its key: %w", wire.ExtraCertificate, wire.ExtraPrivateKey, err)
	}
	cfg := p.anonTLS.Clone()
	cfg.Certificates = []tls.Certificate{pair}
	if len(p.certCache) >= 64 { // bound the cache: drop one
		for k, t := range p.certCache {
			t.CloseIdleConnections()
			delete(p.certCache, k)
			break
		}
	}
	t := newTransport(cfg)
	p.certCache[key] = t
	return t, nil
}

type errorResponder struct{}

func (errorResponder) Error(w http.ResponseWriter, req *http.Request, err error) {
	klog.FromContext(req.Context()).Error(err, "Proxying into the child failed", "path", req.URL.Path)
	http.Error(w, err.Error(), http.StatusBadGateway)
}
