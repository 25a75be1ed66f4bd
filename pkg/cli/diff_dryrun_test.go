package cli

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/client-go/rest"

	proxiesv1alpha1 "github.com/clusternet/clusternet/pkg/apis/proxies/v1alpha1"
)

func TestChildConfigRenamesDryRun(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.URL.RequestURI())
		if r.URL.Query().Has(proxiesv1alpha1.DryRunParameter) {
			w.Header().Set(proxiesv1alpha1.DryRunHeader, "forwarded")
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	child := withProxyDryRun(ChildConfig(&rest.Config{Host: srv.URL}, "c1", nil))
	hubPath := &rest.Config{Host: srv.URL}
	withProxyDryRun(hubPath) // not a proxy path: nothing to rename
	for _, c := range []*rest.Config{child, hubPath} {
		client, err := rest.HTTPClientFor(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, query := range []string{"?dryRun=All&fieldManager=kubectl", "?fieldManager=kubectl"} {
			req, err := http.NewRequest(http.MethodPatch, c.Host+"/api/v1/namespaces/default/configmaps/a"+query, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if req.URL.RawQuery != query[1:] {
				t.Errorf("the caller's request was changed: query %q, want %q", req.URL.RawQuery, query[1:])
			}
		}
	}
	proxy := "/apis/proxies.clusternet.io/v1alpha1/sockets/c1/proxy/direct/api/v1/namespaces/default/configmaps/a"
	want := []string{
		proxy + "?clusternet-dry-run=All&fieldManager=kubectl",
		proxy + "?fieldManager=kubectl",
		"/api/v1/namespaces/default/configmaps/a?dryRun=All&fieldManager=kubectl",
		"/api/v1/namespaces/default/configmaps/a?fieldManager=kubectl",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requests the parent got (-want +got):\n%s", diff)
	}
}

func TestChildConfigRefusesAnUnconfirmedDryRun(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  int
		wantErr string
	}{
		{name: "a success the hub did not confirm", status: http.StatusOK,
			wantErr: "the parent's hub did not confirm the dry run (no Clusternet-Dry-Run response header): it predates the clusternet-dry-run parameter"},
		{name: "a refusal is the parent's answer, passed on", status: http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// An old hub: the parameter reaches the child as it came.
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(tc.status) }))
			defer srv.Close()
			client, err := rest.HTTPClientFor(withProxyDryRun(ChildConfig(&rest.Config{Host: srv.URL}, "c1", nil)))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Post(srv.URL+ProxyPath("c1")+"/api/v1/namespaces/default/configmaps?dryRun=All", "application/json", nil)
			if tc.wantErr == "" {
				if err != nil || resp.StatusCode != tc.status {
					t.Fatalf("response %v, error %v; want status %d", resp, err, tc.status)
				}
				resp.Body.Close()
				return
			}
			if err == nil {
				resp.Body.Close()
				t.Fatalf("status %d, want an error", resp.StatusCode)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}
