package wire

import (
	"bufio"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// format is the proxy path that names t: what ParseTarget reads back as t.
func format(t Target) string {
	if t.Scheme == "direct" {
		return "direct" + t.Path
	}
	return t.Scheme + "/" + t.Host + t.Path
}

// FuzzParseTarget parses any path after sockets/<id>/proxy/. Invariants: it
// never panics; a target it accepts has a known scheme, a path starting with
// "/", a host only for https and http, and that host is a plain
// host[:port] (no path, userinfo, query or fragment: what the agent checks
// against its allowed hosts is what it dials); the target formatted back
// into a path parses to itself; and the path survives the hop from the hub
// to the agent (written as a request line, read by the agent's server) to
// the same target.
func FuzzParseTarget(f *testing.F) {
	for _, p := range []string{
		"direct/api", "/direct/api/v1/namespaces/default/pods", "direct", "direct/",
		"https/10.0.0.1:6443/api", "http/kubernetes.default.svc/healthz", "https/[::1]:443/readyz",
		"https//api", "https/", "ftp/x/y", "", "/",
		"https/user@evil.com/api", "https/allowed.example:443@evil.com/x", "https/evil.com%2Fx/api",
		"https/evil.com?x=/api", "https/evil.com#/api", "direct/../../etc/passwd", "direct/api?watch=true",
		"http/a:b:c/", "https/ev il/", "https/evil.com\\@allowed/",
	} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, path string) {
		got, err := ParseTarget(path)
		if err != nil {
			if got != (Target{}) {
				t.Fatalf("ParseTarget(%q) failed (%v) and still returned %+v", path, err, got)
			}
			if !strings.Contains(err.Error(), "proxy path") {
				t.Fatalf("error %q does not say it is about the proxy path", err)
			}
			return
		}
		if !strings.HasPrefix(got.Path, "/") {
			t.Fatalf("ParseTarget(%q).Path = %q, not starting with /", path, got.Path)
		}
		switch got.Scheme {
		case "direct":
			if got.Host != "" {
				t.Fatalf("ParseTarget(%q): direct target with host %q", path, got.Host)
			}
		case "https", "http":
			if got.Host == "" || strings.Contains(got.Host, "/") {
				t.Fatalf("ParseTarget(%q).Host = %q", path, got.Host)
			}
			u, err := url.Parse(got.Scheme + "://" + got.Host + "/")
			if err != nil || u.Host != got.Host || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
				t.Fatalf("ParseTarget(%q).Host = %q is not a plain host[:port]: a URL reads it as %+v (%v)", path, got.Host, u, err)
			}
		default:
			t.Fatalf("ParseTarget(%q).Scheme = %q", path, got.Scheme)
		}
		again, err := ParseTarget(format(got))
		if err != nil {
			t.Fatalf("ParseTarget(%q) = %+v, which formats as %q, which does not parse: %v", path, got, format(got), err)
		}
		if diff := cmp.Diff(got, again); diff != "" {
			t.Fatalf("target of %q does not round-trip through %q (-first +again):\n%s", path, format(got), diff)
		}
		// The hub sends "/"+path as the request's path inside the tunnel
		// (sockets.ProxyREST.Connect); the agent parses what its server read.
		loc := &url.URL{Scheme: "http", Host: "cluster-x", Path: "/" + strings.TrimPrefix(path, "/")}
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET " + loc.RequestURI() + " HTTP/1.1\r\nHost: cluster-x\r\n\r\n")))
		if err != nil {
			t.Fatalf("the agent cannot read the request line the hub writes for %q (%q): %v", path, loc.RequestURI(), err)
		}
		if req.URL.RawQuery != "" {
			t.Fatalf("path %q became a query %q on the way to the agent", path, req.URL.RawQuery)
		}
		atAgent, err := ParseTarget(req.URL.Path)
		if err != nil {
			t.Fatalf("the hub accepted %q but the agent reads %q and refuses it: %v", path, req.URL.Path, err)
		}
		if diff := cmp.Diff(got, atAgent); diff != "" {
			t.Fatalf("hub and agent read %q as different targets (-hub +agent):\n%s", path, diff)
		}
	})
}

// FuzzIdentityHeaders sets an identity over whatever headers a caller sent
// and reads it back as the agent does. Invariants: the agent reads exactly
// the identity the hub set, whatever the caller's headers claimed; no
// identity header is left for the child; user-extra keys survive both our
// own decoding and kube-apiserver's (url.PathUnescape of the lowercased key).
func FuzzIdentityHeaders(f *testing.F) {
	f.Add("alice", "uid-1", "dev", "acme.com/Team", "a", "X-Clusternet-Extra-Scopes", "forged", false, "")
	f.Add("", "", "", "", "", "Impersonate-User", "system:admin", true, "")
	f.Add("", "", "", "", "", "x-clusternet-token", "forged", false, "token")
	f.Add("bob", "", "system:masters", "user:id@example=1", "v", "X-Clusternet-Extra-user%3Aid%40example=1", "x", false, "")
	f.Add("carol", "", "g", "a%b", "v", "X-Remote-Group", "root", false, "")
	f.Add("dave", "", "g", "ÜNICODE", "v", "x-clusternet-extra-forged", "yes", false, "")
	f.Add("erin", "", "", "", "", "X-Clusternet-Extra-forged", "yes", false, "")
	f.Fuzz(func(t *testing.T, user, uid, group, extraKey, extraValue, callerKey, callerValue string, agent bool, token string) {
		// One of the identities the hub's mapping gives: the agent, a
		// pass-through token, or a user.
		var id Identity
		switch {
		case agent:
			id = Identity{Agent: true}
		case token != "":
			id = Identity{Token: token}
		default:
			id = Identity{User: user, UID: uid}
			if group != "" {
				id.Groups = []string{group}
			}
			if extraKey != "" {
				id.Extra = map[string][]string{extraKey: {extraValue}}
			}
		}
		h := http.Header{}
		h.Add(callerKey, callerValue) // as the caller's server read it (canonical)
		h[callerKey] = append(h[callerKey], callerValue)
		h.Set("Accept", "application/json")
		SetIdentity(h, id)
		got := TakeIdentity(h)
		if len(got.Extra) == 0 {
			got.Extra = nil
		}
		if diff := cmp.Diff(id, got); diff != "" {
			t.Fatalf("identity after SetIdentity over caller header %q: %q (-set +read):\n%s", callerKey, callerValue, diff)
		}
		for k := range h {
			if strings.HasPrefix(strings.ToLower(k), "x-clusternet-") {
				t.Fatalf("TakeIdentity left header %q", k)
			}
		}
		if extraKey != "" {
			header := http.CanonicalHeaderKey("Impersonate-Extra-" + EscapeExtraKey(extraKey))
			back, err := url.PathUnescape(strings.ToLower(header[len("Impersonate-Extra-"):]))
			if err != nil || back != extraKey {
				t.Fatalf("kube-apiserver reads extra key %q back as %q (%v)", extraKey, back, err)
			}
		}
	})
}
