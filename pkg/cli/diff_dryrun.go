package cli

import (
	"fmt"
	"net/http"
	"strings"

	"k8s.io/client-go/rest"

	proxiesv1alpha1 "github.com/clusternet/clusternet/pkg/apis/proxies/v1alpha1"
)

// withProxyDryRun makes a child config (ChildConfig) able to dry-run: the
// parent's API server refuses dryRun on the socket proxy, a connect
// subresource, so requests through the proxy carry it as
// proxiesv1alpha1.DryRunParameter, which the hub renames back for the child.
func withProxyDryRun(c *rest.Config) *rest.Config {
	c.Wrap(func(rt http.RoundTripper) http.RoundTripper { return proxyDryRunRoundTripper{rt} })
	return c
}

type proxyDryRunRoundTripper struct{ next http.RoundTripper }

func (p proxyDryRunRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	if !isSocketProxyPath(req.URL.Path) || !strings.Contains(req.URL.RawQuery, "dryRun") {
		return p.next.RoundTrip(req)
	}
	query := req.URL.Query()
	dryRun, ok := query["dryRun"]
	if !ok {
		return p.next.RoundTrip(req)
	}
	delete(query, "dryRun")
	query[proxiesv1alpha1.DryRunParameter] = dryRun
	// A RoundTripper must not change the caller's request.
	renamed := req.Clone(req.Context())
	u := *req.URL
	u.RawQuery = query.Encode()
	renamed.URL = &u
	resp, err := p.next.RoundTrip(renamed)
	if err != nil || resp.StatusCode >= 300 || resp.Header.Get(proxiesv1alpha1.DryRunHeader) != "" {
		return resp, err
	}
	resp.Body.Close()
	return nil, fmt.Errorf("%s %s: the parent's hub did not confirm the dry run (no %s response header): "+
		"it predates the %s parameter, so the child may have done the request for real; upgrade clusternet-hub before dry-running through it",
		req.Method, req.URL.Path, proxiesv1alpha1.DryRunHeader, proxiesv1alpha1.DryRunParameter)
}

// isSocketProxyPath reports whether path goes through a socket proxy of the
// parent (ProxyPath), the only place DryRunParameter means anything.
func isSocketProxyPath(path string) bool {
	prefix := "/apis/" + proxiesv1alpha1.GroupName + "/" + proxiesv1alpha1.SchemeGroupVersion.Version + "/sockets/"
	i := strings.Index(path, prefix)
	if i < 0 {
		return false
	}
	_, rest, ok := strings.Cut(path[i+len(prefix):], "/")
	return ok && strings.HasPrefix(rest, "proxy/")
}
