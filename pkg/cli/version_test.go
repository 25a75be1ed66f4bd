package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	clusternetversion "github.com/clusternet/clusternet/pkg/version"
)

// runCmd runs the whole plugin with args, as main does, and returns stdout,
// stderr and an error carrying what the plugin printed on failure.
func runCmd(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := NewClusternetCommand(ClusternetOptions{
		Arguments: append([]string{"kubectl-clusternet"}, args...),
		IOStreams: genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
	})
	if code := Run(cmd); code != 0 {
		return out.String(), errOut.String(), fmt.Errorf("exit code %d: %s", code, errOut.String())
	}
	return out.String(), errOut.String(), nil
}

// fakeParent serves /version like a kube-apiserver.
func fakeParent(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/version" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(`{"major":"1","minor":"35","gitVersion":"v1.35.4","platform":"linux/amd64"}`))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestVersion(t *testing.T) {
	client := clusternetversion.Get().GitVersion
	parent := fakeParent(t)
	tests := []struct {
		name    string
		args    []string
		want    string
		wantErr string
		// wantUsage: a flag mistake prints usage, so the user sees the right flags.
		wantUsage bool
	}{
		{
			name: "client only",
			args: []string{"version", "--client"},
			want: "Client Version: " + client + "\n",
		},
		{
			name: "client and parent",
			args: []string{"version", "--server", parent.URL},
			want: "Client Version: " + client + "\nParent Version: v1.35.4\n",
		},
		{
			name:    "unreachable parent still prints the client version",
			args:    []string{"version", "--server", "http://127.0.0.1:1", "--request-timeout=2s"},
			want:    "Client Version: " + client + "\n",
			wantErr: "reading the parent cluster's version",
		},
		{
			name:      "unknown output format",
			args:      []string{"version", "--client", "-o", "wide"},
			wantErr:   `--output "wide" is not supported: use json or yaml`,
			wantUsage: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := runCmd(t, tc.args...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tc.wantUsage {
				if !strings.Contains(out, "Usage:\n  kubectl clusternet version [flags]") {
					t.Errorf("a flag mistake should print usage, got:\n%s", out)
				}
				return
			}
			if diff := cmp.Diff(tc.want, out); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVersionJSON(t *testing.T) {
	out, _, err := runCmd(t, "version", "--server", fakeParent(t).URL, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var got Versions
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if got.ClientVersion == nil || got.ClientVersion.GitVersion != clusternetversion.Get().GitVersion {
		t.Errorf("clientVersion = %+v", got.ClientVersion)
	}
	if got.ParentVersion == nil || got.ParentVersion.GitVersion != "v1.35.4" {
		t.Errorf("parentVersion = %+v", got.ParentVersion)
	}
}

func TestHelpNamesThePlugin(t *testing.T) {
	out, _, err := runCmd(t, "version", "--help")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "kubectl clusternet version [flags]") {
		t.Errorf("help does not say how users type the command:\n%s", out)
	}
}
