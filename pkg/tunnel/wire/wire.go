// Package wire is what the hub and an agent agree on inside a tunnel stream:
// where a proxied request goes, and as whom.
package wire

import (
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
)

// Upstream Clusternet's credential pass-through: a caller impersonates PassThroughUser
// with the child's own credentials as user extras.
const (
	PassThroughUser  = "clusternet"
	ExtraToken       = "clusternet-token"
	ExtraCertificate = "clusternet-certificate"
	ExtraPrivateKey  = "clusternet-privatekey"
)

// Target is where a proxied request goes in the child.
type Target struct {
	// Scheme is "direct" (the child apiserver the agent knows), "https" or "http".
	Scheme string
	// Host is host[:port] for https and http; empty for direct.
	Host string
	// Path is the request path at the target, starting with "/".
	Path string
}

// ParseTarget reads what follows sockets/<id>/proxy/: direct/<path>,
// https/<host[:port]>/<path> or http/<host[:port]>/<path>.
func ParseTarget(path string) (Target, error) {
	path = strings.TrimPrefix(path, "/")
	scheme, rest, _ := strings.Cut(path, "/")
	switch scheme {
	case "direct":
		return Target{Scheme: scheme, Path: "/" + rest}, nil
	case "https", "http":
		host, p, _ := strings.Cut(rest, "/")
		if host == "" {
			return Target{}, fmt.Errorf("proxy path %q names no host: use proxy/%s/<host[:port]>/<path>", path, scheme)
		}
		// The agent checks the host against its allowed hosts as written:
		// it must be what a URL reads as the host, with no userinfo, query or fragment.
		if u, err := url.Parse(scheme + "://" + host + "/"); err != nil || u.Host != host || u.User != nil {
			return Target{}, fmt.Errorf("proxy path %q names host %q, which is not a host[:port]: use proxy/%s/<host[:port]>/<path>", path, host, scheme)
		}
		return Target{Scheme: scheme, Host: host, Path: "/" + p}, nil
	default:
		return Target{}, fmt.Errorf("proxy path %q must start with direct/, https/<host>/ or http/<host>/", path)
	}
}

// Identity is the caller as the child should see it: either a user to
// impersonate with the agent's own credentials, or credentials of the
// child's to pass through (Token, or Certificate and PrivateKey, base64 PEM),
// or the agent itself (Agent).
type Identity struct {
	// Agent asks the agent to use its own credentials, impersonating nobody.
	// Only the hub sets it, for what it pushes into the child; the hub's proxy
	// strips it from every caller's request, and an agent whose AppPusher gate
	// is off refuses it.
	Agent       bool
	User        string
	UID         string
	Groups      []string
	Extra       map[string][]string
	Token       string
	Certificate string
	PrivateKey  string
}

// Headers the hub sets on a request inside the tunnel.
const (
	prefix            = "X-Clusternet-"
	headerAgent       = prefix + "Agent"
	headerUser        = prefix + "User"
	headerUID         = prefix + "Uid"
	headerGroup       = prefix + "Group"
	headerExtraPrefix = prefix + "Extra-"
	headerToken       = prefix + "Token"
	headerCertificate = prefix + "Certificate"
	headerPrivateKey  = prefix + "Privatekey"
)

// SetIdentity replaces every identity-bearing header on h with id. Headers a
// client sent that could claim an identity (Authorization, Impersonate-*,
// the aggregator's X-Remote-*, our own X-Clusternet-*) never reach the agent.
func SetIdentity(h http.Header, id Identity) {
	for k := range h {
		lk := strings.ToLower(k)
		if lk == "authorization" || strings.HasPrefix(lk, "impersonate-") || strings.HasPrefix(lk, "x-remote-") || strings.HasPrefix(lk, "x-clusternet-") {
			delete(h, k) // not h.Del, which would miss a key not in canonical form
		}
	}
	switch {
	case id.Agent:
		h.Set(headerAgent, "self")
	case id.Token != "":
		h.Set(headerToken, id.Token)
	case id.Certificate != "":
		h.Set(headerCertificate, id.Certificate)
		h.Set(headerPrivateKey, id.PrivateKey)
	default:
		h.Set(headerUser, id.User)
		if id.UID != "" {
			h.Set(headerUID, id.UID)
		}
		for _, g := range id.Groups {
			h.Add(headerGroup, g)
		}
		for k, vs := range id.Extra {
			for _, v := range vs {
				h.Add(headerExtraPrefix+EscapeExtraKey(k), v)
			}
		}
	}
}

// TakeIdentity reads and removes the identity headers from h.
func TakeIdentity(h http.Header) Identity {
	id := Identity{
		Agent:       h.Get(headerAgent) == "self",
		User:        h.Get(headerUser),
		UID:         h.Get(headerUID),
		Groups:      h.Values(headerGroup),
		Token:       h.Get(headerToken),
		Certificate: h.Get(headerCertificate),
		PrivateKey:  h.Get(headerPrivateKey),
	}
	for k, vs := range h {
		if strings.HasPrefix(k, textproto.CanonicalMIMEHeaderKey(headerExtraPrefix)) {
			if id.Extra == nil {
				id.Extra = map[string][]string{}
			}
			key := unescapeExtraKey(k[len(headerExtraPrefix):])
			id.Extra[key] = append(id.Extra[key], vs...)
		}
	}
	for k := range h {
		if strings.HasPrefix(strings.ToLower(k), "x-clusternet-") {
			delete(h, k)
		}
	}
	return id
}

// EscapeExtraKey makes a user-extra key fit a header name: extra keys may
// hold characters headers cannot (":", "@", "/") and are case-sensitive,
// while header names are not. Every byte but [a-z0-9._-] is percent-encoded,
// which kube-apiserver's Impersonate-Extra- decoding (url.PathUnescape) reads back.
func EscapeExtraKey(k string) string {
	var b strings.Builder
	for _, c := range []byte(k) {
		if ('a' <= c && c <= 'z') || ('0' <= c && c <= '9') || c == '-' || c == '.' || c == '_' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func unescapeExtraKey(k string) string {
	k = strings.ToLower(k)
	var b strings.Builder
	for i := 0; i < len(k); i++ {
		if k[i] == '%' && i+2 < len(k) {
			var c byte
			if _, err := fmt.Sscanf(k[i+1:i+3], "%02x", &c); err == nil {
				b.WriteByte(c)
				i += 2
				continue
			}
		}
		b.WriteByte(k[i])
	}
	return b.String()
}

// ExplicitEncoding makes the caller's Accept-Encoding explicit before a
// request goes on: a request that asks for none goes on asking for identity.
// Go's http.Transport asks for gzip on behalf of a request that has no
// Accept-Encoding (unless its DisableCompression is set) and decompresses
// what comes back: on the proxy path one such transport makes the child
// compress and a hop decompress what nobody asked to compress (issue 16).
// A caller's own value, gzip included, goes on untouched, and so does the
// child's compressed answer to it.
func ExplicitEncoding(h http.Header) {
	if strings.TrimSpace(h.Get("Accept-Encoding")) == "" {
		h.Set("Accept-Encoding", "identity")
	}
}
