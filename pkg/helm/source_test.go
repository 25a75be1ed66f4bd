package helm_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/helm"
	"github.com/clusternet/clusternet/test/helmrepo"
)

func opts(repoURL, chart, version string) *appsv1alpha1.HelmOptions {
	return &appsv1alpha1.HelmOptions{Repository: repoURL, Chart: chart, ChartVersion: version, TargetNamespace: "demo", PlainHTTP: strings.HasPrefix(repoURL, "oci://")}
}

// closedURL is a loopback URL nothing listens on.
func closedURL(t *testing.T) string {
	s := httptest.NewServer(http.NotFoundHandler())
	s.Close()
	return s.URL
}

func TestSourceHTTPRepository(t *testing.T) {
	r := helmrepo.NewRepo(t)
	for _, v := range []string{"0.1.0", "0.2.0", "0.3.0-rc.1"} {
		r.Add(t, helmrepo.DemoChart("demo", v))
	}
	r.Add(t, helmrepo.DemoChart("other", "1.0.0"))
	dead := closedURL(t)
	tests := []struct {
		name        string
		opts        *appsv1alpha1.HelmOptions
		want        string
		wantReason  helm.LookupReason
		wantMessage string
	}{
		{name: "exact version", opts: opts(r.URL, "demo", "0.1.0"), want: "0.1.0"},
		{name: "no version is the newest stable", opts: opts(r.URL, "demo", ""), want: "0.2.0"},
		{name: "constraint", opts: opts(r.URL, "demo", "~0.1"), want: "0.1.0"},
		{name: "pre-release named exactly", opts: opts(r.URL, "demo", "0.3.0-rc.1"), want: "0.3.0-rc.1"},
		{name: "unknown version lists the newest", opts: opts(r.URL, "demo", "9.9.9"), wantReason: helm.ReasonVersionNotFound,
			wantMessage: fmt.Sprintf(`chart "demo" has no version "9.9.9" in %q; newest available: 0.3.0-rc.1, 0.2.0, 0.1.0: set spec.version to one of them`, r.URL)},
		{name: "unknown chart", opts: opts(r.URL, "mysql", ""), wantReason: helm.ReasonChartNotFound,
			wantMessage: fmt.Sprintf(`chart "mysql" is not in repository %q (it has demo, other): check spec.chart`, r.URL)},
		{name: "not a repository", opts: opts(r.URL+"/nothing", "demo", ""), wantReason: helm.ReasonInvalid,
			wantMessage: fmt.Sprintf(`%q is not a chart repository: it has no index.yaml (404 Not Found): check spec.repo`, r.URL+"/nothing")},
		{name: "unreachable", opts: opts(dead, "demo", ""), wantReason: helm.ReasonUnreachable,
			wantMessage: fmt.Sprintf(`chart repository %q cannot be reached: Get "%s/index.yaml": dial tcp %s: connect: connection refused: check spec.repo and that the repository is up (it is checked again periodically)`,
				dead, dead, strings.TrimPrefix(dead, "http://"))},
	}
	src := helm.NewSource()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := src.Resolve(context.Background(), tc.opts, nil)
			if tc.wantReason == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got != tc.want {
					t.Fatalf("Resolve = %q, want %q", got, tc.want)
				}
				ch, err := src.Load(context.Background(), tc.opts, got, nil)
				if err != nil {
					t.Fatal(err)
				}
				if ch.Metadata.Name != tc.opts.Chart || ch.Metadata.Version != got {
					t.Fatalf("Load gave %s-%s", ch.Metadata.Name, ch.Metadata.Version)
				}
				return
			}
			if err == nil {
				t.Fatalf("Resolve = %q, want a %s error", got, tc.wantReason)
			}
			if reason := helm.ReasonOf(err); reason != tc.wantReason {
				t.Errorf("reason %q, want %q (%v)", reason, tc.wantReason, err)
			}
			if diff := cmp.Diff(tc.wantMessage, err.Error()); diff != "" {
				t.Errorf("message (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("versions newest first", func(t *testing.T) {
		got, err := src.Versions(context.Background(), opts(r.URL, "demo", ""), nil)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"0.3.0-rc.1", "0.2.0", "0.1.0"}, got); diff != "" {
			t.Error(diff)
		}
	})

	t.Run("a repository answering 503", func(t *testing.T) {
		down := helmrepo.NewRepo(t)
		down.FailWith(http.StatusServiceUnavailable)
		_, err := src.Resolve(context.Background(), opts(down.URL, "demo", ""), nil)
		want := fmt.Sprintf(`chart repository %q answered 503 Service Unavailable: check spec.repo and that the repository is up (it is checked again periodically)`, down.URL)
		if err == nil || err.Error() != want || helm.ReasonOf(err) != helm.ReasonUnreachable {
			t.Fatalf("got %v, want %s", err, want)
		}
	})

	t.Run("loaded charts are cached", func(t *testing.T) {
		cachedRepo := helmrepo.NewRepo(t)
		cachedRepo.Add(t, helmrepo.DemoChart("demo", "1.0.0"))
		o := opts(cachedRepo.URL, "demo", "1.0.0")
		if _, err := src.Load(context.Background(), o, "1.0.0", nil); err != nil {
			t.Fatal(err)
		}
		cachedRepo.FailWith(http.StatusInternalServerError)
		if _, err := src.Load(context.Background(), o, "1.0.0", nil); err != nil {
			t.Fatalf("second Load reached the repository: %v", err)
		}
		// Other credentials are another cache entry.
		if _, err := src.Load(context.Background(), o, "1.0.0", &helm.Credentials{Username: "u", Password: "p"}); err == nil {
			t.Fatal("Load with other credentials was served from the cache")
		}
	})
}

func TestSourceHTTPRepositoryCredentials(t *testing.T) {
	r := helmrepo.NewRepo(t, helmrepo.WithBasicAuth("alice", "s3cret"))
	r.Add(t, helmrepo.DemoChart("demo", "0.1.0"))
	o := opts(r.URL, "demo", "0.1.0")
	tests := []struct {
		name  string
		creds *helm.Credentials
		want  string
	}{
		{name: "none", want: fmt.Sprintf(`chart repository %q refused the credentials (401 Unauthorized): set spec.chartPullSecret to a Secret with username and password keys`, r.URL)},
		{name: "wrong", creds: &helm.Credentials{Username: "alice", Password: "nope"},
			want: fmt.Sprintf(`chart repository %q refused the credentials (401 Unauthorized): check the username and password in spec.chartPullSecret's Secret`, r.URL)},
		{name: "right", creds: &helm.Credentials{Username: "alice", Password: "s3cret"}},
	}
	src := helm.NewSource()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := src.Resolve(context.Background(), o, tc.creds)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := src.Load(context.Background(), o, v, tc.creds); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || err.Error() != tc.want || helm.ReasonOf(err) != helm.ReasonUnauthorized {
				t.Fatalf("got %v, want %s", err, tc.want)
			}
		})
	}
}

func TestSourceOCIRegistry(t *testing.T) {
	reg := helmrepo.NewRegistry(t)
	reg.Push(t, helmrepo.DemoChart("demo", "0.1.0"))
	reg.Push(t, helmrepo.DemoChart("demo", "0.2.0"))
	src := helm.NewSource()
	tests := []struct {
		name        string
		opts        *appsv1alpha1.HelmOptions
		want        string
		wantReason  helm.LookupReason
		wantMessage string
	}{
		{name: "exact version", opts: opts(reg.URL, "demo", "0.1.0"), want: "0.1.0"},
		{name: "newest", opts: opts(reg.URL, "demo", ""), want: "0.2.0"},
		{name: "unknown version lists the newest", opts: opts(reg.URL, "demo", "1.0.0"), wantReason: helm.ReasonVersionNotFound,
			wantMessage: fmt.Sprintf(`chart "demo" has no version "1.0.0" in %q; newest available: 0.2.0, 0.1.0: set spec.version to one of them`, reg.URL)},
		{name: "unknown chart", opts: opts(reg.URL, "mysql", ""), wantReason: helm.ReasonChartNotFound,
			wantMessage: fmt.Sprintf(`chart "mysql" is not in registry %q (%s/charts/mysql not found): check spec.chart`, reg.URL, reg.Host)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := src.Resolve(context.Background(), tc.opts, nil)
			if tc.wantReason == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got != tc.want {
					t.Fatalf("Resolve = %q, want %q", got, tc.want)
				}
				ch, err := src.Load(context.Background(), tc.opts, got, nil)
				if err != nil {
					t.Fatal(err)
				}
				if ch.Metadata.Version != got {
					t.Fatalf("Load gave version %s", ch.Metadata.Version)
				}
				return
			}
			if err == nil {
				t.Fatalf("Resolve = %q, want a %s error", got, tc.wantReason)
			}
			if reason := helm.ReasonOf(err); reason != tc.wantReason {
				t.Errorf("reason %q, want %q (%v)", reason, tc.wantReason, err)
			}
			if diff := cmp.Diff(tc.wantMessage, err.Error()); diff != "" {
				t.Errorf("message (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("TLS to a plain HTTP registry says to set plainHTTP", func(t *testing.T) {
		o := opts(reg.URL, "demo", "")
		o.PlainHTTP = false
		_, err := src.Resolve(context.Background(), o, nil)
		if err == nil || helm.ReasonOf(err) != helm.ReasonUnreachable || !strings.HasSuffix(err.Error(), "the registry speaks plain HTTP: set spec.plainHTTP: true") {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("unreachable", func(t *testing.T) {
		dead := "oci://" + strings.TrimPrefix(closedURL(t), "http://") + "/charts"
		_, err := src.Resolve(context.Background(), opts(dead, "demo", ""), nil)
		if err == nil || helm.ReasonOf(err) != helm.ReasonUnreachable || !strings.HasPrefix(err.Error(), fmt.Sprintf("registry %q cannot be reached: ", dead)) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestSourceOCIRegistryCredentials(t *testing.T) {
	reg := helmrepo.NewRegistry(t, helmrepo.WithBasicAuth("bob", "pw"))
	reg.Push(t, helmrepo.DemoChart("demo", "0.1.0"))
	src := helm.NewSource()
	o := opts(reg.URL, "demo", "0.1.0")
	_, err := src.Resolve(context.Background(), o, nil)
	want := fmt.Sprintf(`registry %q refused the credentials (401 Unauthorized): set spec.chartPullSecret to a Secret with username and password keys`, reg.URL)
	if err == nil || err.Error() != want {
		t.Fatalf("without credentials: got %v, want %s", err, want)
	}
	creds := &helm.Credentials{Username: "bob", Password: "pw"}
	v, err := src.Resolve(context.Background(), o, creds)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Load(context.Background(), o, v, creds); err != nil {
		t.Fatal(err)
	}
}
