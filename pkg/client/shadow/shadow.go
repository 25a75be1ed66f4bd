// Package shadow lets client-go programs use Clusternet's shadow API: ordinary
// kinds (Deployments, Services, Namespaces, CRDs, ...) become templates stored
// in the parent cluster for Subscriptions to distribute, instead of running in
// the parent.
//
// Wrap a rest.Config and use it with any client-go client:
//
//	cfg, _ := clientcmd.BuildConfigFromFlags("", kubeconfig)
//	cs, _ := kubernetes.NewForConfig(shadow.Wrap(cfg))
//	cs.AppsV1().Deployments("foo").Create(ctx, deploy, metav1.CreateOptions{}) // a template
//
// The wrapped transport moves resource requests under /api/v1 and
// /apis/<group>/<version> onto /apis/shadow/v1alpha1, keeping the rest of the
// path. Left alone: Clusternet's own groups (*.clusternet.io), the shadow
// group itself, discovery (/api, /apis, /apis/<group>/<version>), OpenAPI,
// /version and other non-resource paths, and events (reports about objects,
// never templates). The shadow API serves the same resource names with the
// same semantics; of the subresources it serves only scale.
package shadow

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// The shadow API the hub serves through the parent's aggregator.
const (
	// Group is the shadow API's group, literally "shadow".
	Group = "shadow"
	// Version is its only version.
	Version = "v1alpha1"
	// Prefix is the path of the shadow API.
	Prefix = "/apis/" + Group + "/" + Version
)

// Wrap returns a copy of cfg whose requests for ordinary kinds go to the
// shadow API. Discovery and RESTMapping still describe the parent's real
// kinds, so clients keep using apps/v1 Deployments and v1 Services.
func Wrap(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	base := basePath(c.Host)
	c.Wrap(func(rt http.RoundTripper) http.RoundTripper { return NewRoundTripper(rt, base) })
	return c
}

// NewRoundTripper rewrites requests sent to a server whose API starts at
// basePath ("" for a server at the root; the path of rest.Config.Host
// otherwise) and passes them to rt.
func NewRoundTripper(rt http.RoundTripper, basePath string) http.RoundTripper {
	return &roundTripper{delegate: rt, base: strings.TrimSuffix(basePath, "/")}
}

// basePath is the path part of a rest.Config Host ("https://h:6443/prefix").
func basePath(host string) string {
	u, err := url.Parse(host)
	if err != nil || u.Host == "" {
		// "h:6443" without a scheme: client-go adds one; no path then.
		return ""
	}
	return strings.TrimSuffix(u.Path, "/")
}

type roundTripper struct {
	delegate http.RoundTripper
	base     string
}

// WrappedRoundTripper lets client-go and transport debugging see through.
func (rt *roundTripper) WrappedRoundTripper() http.RoundTripper { return rt.delegate }

func (rt *roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	p := req.URL.Path
	if rt.base != "" {
		if !strings.HasPrefix(p, rt.base+"/") {
			return rt.delegate.RoundTrip(req)
		}
		p = strings.TrimPrefix(p, rt.base)
	}
	newPath, err := Rewrite(p)
	if err != nil {
		return refuse(req, err), nil
	}
	if newPath == p {
		return rt.delegate.RoundTrip(req)
	}
	// RoundTrippers must not change the caller's request.
	r := req.Clone(req.Context())
	r.URL.Path = rt.base + newPath
	r.URL.RawPath = ""
	return rt.delegate.RoundTrip(r)
}

// UnsupportedSubresourceError is what Rewrite returns for a subresource
// templates do not have (status, log, exec, ...).
type UnsupportedSubresourceError struct {
	Resource, Subresource string
}

func (e *UnsupportedSubresourceError) Error() string {
	return fmt.Sprintf("subresource %q of %s is not served for templates: the shadow API serves only \"scale\"; "+
		"to reach the live object use `kubectl clusternet --cluster <name> ...`", e.Subresource, e.Resource)
}

// Rewrite returns the path on the shadow API for an API path (without the
// server's base path), or path itself when it stays on the parent.
func Rewrite(path string) (string, error) {
	var rest string
	switch {
	case strings.HasPrefix(path, "/api/v1/"):
		rest = strings.TrimPrefix(path, "/api/v1/")
	case strings.HasPrefix(path, "/apis/"):
		parts := strings.SplitN(strings.TrimPrefix(path, "/apis/"), "/", 3)
		if len(parts) < 3 || parts[2] == "" || parts[0] == Group || isClusternetGroup(parts[0]) {
			return path, nil
		}
		rest = parts[2]
	default:
		return path, nil
	}
	if rest == "" {
		return path, nil
	}
	resource, sub := splitResource(rest)
	if resource == "events" {
		return path, nil
	}
	if sub != "" && sub != "scale" {
		return "", &UnsupportedSubresourceError{Resource: resource, Subresource: sub}
	}
	return Prefix + "/" + rest, nil
}

func isClusternetGroup(group string) bool {
	return group == "clusternet.io" || strings.HasSuffix(group, ".clusternet.io")
}

// splitResource finds the resource and subresource in the part of a path
// after /api/v1/ or /apis/<group>/<version>/.
func splitResource(rest string) (resource, subresource string) {
	segs := strings.Split(strings.TrimSuffix(rest, "/"), "/")
	if segs[0] == "watch" && len(segs) > 1 { // the deprecated /watch/ prefix
		segs = segs[1:]
	}
	var tail []string
	switch {
	case segs[0] == "namespaces" && len(segs) == 3 && (segs[2] == "status" || segs[2] == "finalize"):
		return "namespaces", segs[2]
	case segs[0] == "namespaces" && len(segs) >= 3:
		resource, tail = segs[2], segs[3:] // namespaces/<ns>/<resource>[/<name>[/<sub>...]]
	default:
		resource, tail = segs[0], segs[1:] // <resource>[/<name>[/<sub>...]]
	}
	if len(tail) > 1 {
		subresource = strings.Join(tail[1:], "/")
	}
	return resource, subresource
}

// refuse answers a request the shadow API cannot serve with a Status, as a
// server would, so clients report it like any API error.
func refuse(req *http.Request, err error) *http.Response {
	status := metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure,
		Code:     http.StatusBadRequest,
		Reason:   metav1.StatusReasonBadRequest,
		Message:  err.Error(),
	}
	body, _ := json.Marshal(status)
	if req.Body != nil {
		_ = req.Body.Close()
	}
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", http.StatusBadRequest, http.StatusText(http.StatusBadRequest)),
		StatusCode:    http.StatusBadRequest,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}
}
