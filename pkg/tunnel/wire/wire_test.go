package wire

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSetIdentityReplacesEveryClaim(t *testing.T) {
	for _, tc := range []struct {
		name string
		id   Identity
		want Identity
	}{
		{"impersonated user", Identity{User: "alice", Groups: []string{"dev"}, Extra: map[string][]string{"acme.com/Team": {"a", "b"}}},
			Identity{User: "alice", Groups: []string{"dev"}, Extra: map[string][]string{"acme.com/Team": {"a", "b"}}}},
		{"token pass-through", Identity{Token: "t"}, Identity{Token: "t"}},
		{"certificate pass-through", Identity{Certificate: "c", PrivateKey: "k"}, Identity{Certificate: "c", PrivateKey: "k"}},
		{"the agent itself", Identity{Agent: true}, Identity{Agent: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// What a caller might send to claim another identity on the way.
			h := http.Header{}
			h.Set("Authorization", "Bearer stolen")
			h.Set("Impersonate-User", "system:admin")
			h.Add("impersonate-group", "system:masters")
			h.Set("X-Remote-User", "root")
			h.Set("X-Clusternet-Agent", "self")
			h.Set("x-clusternet-token", "forged")
			h.Set("Accept", "application/json")
			SetIdentity(h, tc.id)
			for _, k := range []string{"Authorization", "Impersonate-User", "Impersonate-Group", "X-Remote-User"} {
				if v := h.Values(k); len(v) > 0 {
					t.Errorf("header %s = %q survived SetIdentity", k, v)
				}
			}
			if h.Get("Accept") != "application/json" {
				t.Errorf("Accept header lost")
			}
			got := TakeIdentity(h)
			if len(got.Extra) == 0 {
				got.Extra = nil
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("identity after the round trip (-want +got):\n%s", diff)
			}
			for k := range h {
				if len(k) >= len(prefix) && http.CanonicalHeaderKey(k[:len(prefix)]) == http.CanonicalHeaderKey(prefix) {
					t.Errorf("TakeIdentity left header %s", k)
				}
			}
		})
	}
}

func TestEscapeExtraKeyIsReadBackByKubeAPIServer(t *testing.T) {
	// kube-apiserver reads Impersonate-Extra-<key> by lowercasing what
	// follows the prefix (Go canonicalizes header names) and then
	// url.PathUnescape; extra keys are case-sensitive.
	for _, key := range []string{"scopes", "acme.com/Team", "user:id@example=1", "a%b", "ÜNICODE"} {
		header := http.CanonicalHeaderKey("Impersonate-Extra-" + EscapeExtraKey(key))
		got, err := url.PathUnescape(strings.ToLower(header[len("Impersonate-Extra-"):]))
		if err != nil {
			t.Fatalf("key %q: %v", key, err)
		}
		if got != key {
			t.Errorf("key %q came back as %q", key, got)
		}
	}
}

func TestExplicitEncoding(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   http.Header
		want []string
	}{
		{name: "none asks for identity", in: http.Header{}, want: []string{"identity"}},
		{name: "an empty value asks for identity", in: http.Header{"Accept-Encoding": {" "}}, want: []string{"identity"}},
		{name: "identity stays", in: http.Header{"Accept-Encoding": {"identity"}}, want: []string{"identity"}},
		{name: "gzip stays", in: http.Header{"Accept-Encoding": {"gzip"}}, want: []string{"gzip"}},
		{name: "a list stays as sent", in: http.Header{"Accept-Encoding": {"gzip, deflate, br"}}, want: []string{"gzip, deflate, br"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ExplicitEncoding(tc.in)
			if diff := cmp.Diff(tc.want, tc.in.Values("Accept-Encoding")); diff != "" {
				t.Errorf("Accept-Encoding (-want +got):\n%s", diff)
			}
		})
	}
}
