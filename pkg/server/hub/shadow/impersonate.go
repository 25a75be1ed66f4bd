package shadow

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/transport"
)

// authorClients gives the dry run a client of the parent that acts as a
// template's author, so the parent's RBAC (with its escalate and bind
// checks) and admission judge the template as they would judge the author
// creating the object: what the author could not create in the parent they
// cannot store as a template for children.
type authorClients interface {
	forUser(author user.Info) (dynamic.Interface, error)
}

// impersonatingClients share one connection to the parent (the hub's TLS
// transport and credentials) between all authors; each client only adds
// the author's Impersonate-* headers. A transport per request would cost a
// TLS handshake and an idle connection per write (DESIGN.md measures what
// that does to a proxy path).
type impersonatingClients struct {
	config    *rest.Config
	transport http.RoundTripper
	timeout   time.Duration
}

// errHubImpersonates refuses a hub configuration that already impersonates
// someone: its identity would replace the author's.
var errHubImpersonates = errors.New("the hub's configuration of the parent impersonates a user; the shadow API impersonates each template's author itself")

func newImpersonatingClients(cfg *rest.Config) (*impersonatingClients, error) {
	if cfg.Impersonate.UserName != "" || cfg.Impersonate.UID != "" || len(cfg.Impersonate.Groups) > 0 || len(cfg.Impersonate.Extra) > 0 {
		return nil, fmt.Errorf("%w: remove the impersonation (%q) from the hub's kubeconfig", errHubImpersonates, cfg.Impersonate.UserName)
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	return &impersonatingClients{config: rest.CopyConfig(cfg), transport: hc.Transport, timeout: hc.Timeout}, nil
}

// forUser is a client acting as author, exactly as the parent's aggregator
// named them to the hub: user name, UID, groups and extras. It builds no
// transport: the round tripper only sets headers on the shared one.
func (c *impersonatingClients) forUser(author user.Info) (dynamic.Interface, error) {
	if author == nil || author.GetName() == "" {
		// Never fall back to the hub's own identity.
		return nil, errors.New("no author to act as")
	}
	rt := transport.NewImpersonatingRoundTripper(transport.ImpersonationConfig{
		UserName: author.GetName(),
		UID:      author.GetUID(),
		Groups:   author.GetGroups(),
		Extra:    author.GetExtra(),
	}, c.transport)
	return dynamic.NewForConfigAndClient(c.config, &http.Client{Transport: rt, Timeout: c.timeout})
}
