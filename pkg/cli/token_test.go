package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
)

const testCA = "-----BEGIN CERTIFICATE-----\nMIIBparentCA\n-----END CERTIFICATE-----\n"

var tokenNow = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// parentKubeconfig writes a kubeconfig for a parent at server with testCA.
func parentKubeconfig(t *testing.T, server string) genericclioptions.RESTClientGetter {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	data := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: parent, cluster: {server: %q, certificate-authority-data: %s}}]
users: [{name: admin, user: {token: admin-token}}]
contexts: [{name: parent, context: {cluster: parent, user: admin}}]
current-context: parent
`, server, base64.StdEncoding.EncodeToString([]byte(testCA)))
	if err := writeFile(path, data); err != nil {
		t.Fatal(err)
	}
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig = &path
	return flags
}

// runCreateToken runs `create token` as a whole command against cs.
func runCreateToken(t *testing.T, parent genericclioptions.RESTClientGetter, cs kubernetes.Interface, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	o := NewCreateTokenOptions(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	o.newClient = func() (kubernetes.Interface, error) { return cs, nil }
	o.now = func() time.Time { return tokenNow }
	cmd := newCmdCreateToken(o, parent)
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SilenceErrors = true
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// onlyTokenSecret returns the one Secret in kube-system.
func onlyTokenSecret(t *testing.T, cs kubernetes.Interface) *corev1.Secret {
	t.Helper()
	list, err := cs.CoreV1().Secrets("kube-system").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 {
		t.Fatalf("%d Secrets in kube-system, want 1", len(list.Items))
	}
	return &list.Items[0]
}

func stringData(s *corev1.Secret) map[string]string {
	out := map[string]string{}
	for k, v := range s.Data {
		out[k] = string(v)
	}
	return out
}

var tokenLine = regexp.MustCompile(`^([a-z0-9]{6})\.([a-z0-9]{16})\n$`)

func TestCreateToken(t *testing.T) {
	const group = "system:bootstrappers:clusternet:register-cluster-token"
	tests := []struct {
		name       string
		args       []string
		wantData   func(id, secret string) map[string]string
		wantErrOut func(id string) string
	}{
		{
			name: "defaults: 24 hours",
			wantData: func(id, secret string) map[string]string {
				return map[string]string{"token-id": id, "token-secret": secret, "usage-bootstrap-authentication": "true",
					"auth-extra-groups": group, "expiration": "2026-03-02T10:00:00Z"}
			},
		},
		{
			name: "ttl and description",
			args: []string{"--ttl", "90m", "--description", "edge site 12"},
			wantData: func(id, secret string) map[string]string {
				return map[string]string{"token-id": id, "token-secret": secret, "usage-bootstrap-authentication": "true",
					"auth-extra-groups": group, "expiration": "2026-03-01T11:30:00Z", "description": "edge site 12"}
			},
		},
		{
			name: "no expiry warns",
			args: []string{"--ttl", "0"},
			wantData: func(id, secret string) map[string]string {
				return map[string]string{"token-id": id, "token-secret": secret, "usage-bootstrap-authentication": "true", "auth-extra-groups": group}
			},
			wantErrOut: func(id string) string {
				return "Warning: this bootstrap token never expires: whoever holds it may ask to register clusters until you delete it " +
					"(`kubectl -n kube-system delete secret bootstrap-token-" + id + "`)\n"
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := fake.NewClientset()
			out, errOut, err := runCreateToken(t, parentKubeconfig(t, "https://parent.example.com:6443"), cs, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			m := tokenLine.FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("stdout %q is not one token line", out)
			}
			s := onlyTokenSecret(t, cs)
			if s.Name != "bootstrap-token-"+m[1] || s.Type != corev1.SecretTypeBootstrapToken {
				t.Errorf("Secret %q of type %q, want bootstrap-token-%s of type %s", s.Name, s.Type, m[1], corev1.SecretTypeBootstrapToken)
			}
			if diff := cmp.Diff(tc.wantData(m[1], m[2]), stringData(s)); diff != "" {
				t.Errorf("Secret data (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(map[string]string{"clusternet.io/created-by": "kubectl-clusternet"}, s.Labels); diff != "" {
				t.Errorf("Secret labels (-want +got):\n%s", diff)
			}
			wantErrOut := ""
			if tc.wantErrOut != nil {
				wantErrOut = tc.wantErrOut(m[1])
			}
			if diff := cmp.Diff(wantErrOut, errOut); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCreateTokenTwiceGivesTwoTokens(t *testing.T) {
	cs := fake.NewClientset()
	parent := parentKubeconfig(t, "https://parent.example.com:6443")
	a, _, errA := runCreateToken(t, parent, cs)
	b, _, errB := runCreateToken(t, parent, cs)
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	if a == b {
		t.Fatalf("two runs printed the same token %q", a)
	}
}

func TestCreateTokenPrintJoinCommand(t *testing.T) {
	tests := []struct {
		name, server string
		args         []string
		wantURL      string
		wantErrOut   string
	}{
		{name: "the kubeconfig's server", server: "https://parent.example.com:6443", wantURL: "https://parent.example.com:6443"},
		{
			name: "--parent-url wins", server: "https://127.0.0.1:6443",
			args: []string{"--parent-url", "https://10.0.0.1:6443"}, wantURL: "https://10.0.0.1:6443",
		},
		{
			name: "a loopback server warns", server: "https://127.0.0.1:6443", wantURL: "https://127.0.0.1:6443",
			wantErrOut: `Warning: the parent URL "https://127.0.0.1:6443" is a loopback address, which a child reaches only if it runs on this machine: pass --parent-url with the address children reach` + "\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := fake.NewClientset()
			out, errOut, err := runCreateToken(t, parentKubeconfig(t, tc.server), cs, append([]string{"--print-join-command", "--ttl", "1h"}, tc.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			s := onlyTokenSecret(t, cs)
			id, secret := string(s.Data["token-id"]), string(s.Data["token-secret"])
			want := `# Bootstrap token ` + id + ` (Secret kube-system/bootstrap-token-` + id + ` in the parent). It expires at 2026-03-01T11:00:00Z.
# Run these with kubectl pointed at the child cluster:
kubectl create namespace clusternet-system
kubectl apply -f - <<'EOF'
apiVersion: v1
kind: Secret
metadata:
  name: clusternet-agent-cluster-registration
  namespace: clusternet-system
stringData:
  parentCA: |
    -----BEGIN CERTIFICATE-----
    MIIBparentCA
    -----END CERTIFICATE-----
  parentURL: ` + tc.wantURL + `
  regToken: ` + id + `.` + secret + `
type: Opaque
EOF
kubectl apply -f deploy/agent    # clusternet-agent, from the Clusternet repository
# If clusternet-hub approves registrations by hand, then approve the child in
# the parent by its cluster id, the UID of the child's kube-system namespace
# (in the child: kubectl get namespace kube-system -o jsonpath='{.metadata.uid}'):
#   kubectl clusternet approve CLUSTER-ID
`
			if diff := cmp.Diff(want, out); diff != "" {
				t.Errorf("stdout (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantErrOut, errOut); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCreateTokenRefusals: bad flags create nothing; a refused create names
// the permission.
func TestCreateTokenRefusals(t *testing.T) {
	tests := []struct {
		name, server string
		args         []string
		forbid       bool
		wantErr      string
	}{
		{
			name: "negative ttl", args: []string{"--ttl", "-1h"},
			wantErr: `--ttl "-1h0m0s" is negative: give a duration such as 1h or 24h (0 for a token that never expires, which is not recommended)`,
		},
		{
			name: "--parent-url without --print-join-command", args: []string{"--parent-url", "https://10.0.0.1:6443"},
			wantErr: `--parent-url "https://10.0.0.1:6443" needs --print-join-command: it only goes into the printed registration Secret`,
		},
		{
			name: "an http parent", args: []string{"--print-join-command", "--parent-url", "http://10.0.0.1:6443"},
			wantErr: `parent URL "http://10.0.0.1:6443" is not an https URL: clusternet-agent only registers over https; pass --parent-url https://HOST:PORT`,
		},
		{
			name: "an http kubeconfig server", server: "http://10.0.0.1:8080", args: []string{"--print-join-command"},
			wantErr: `parent URL "http://10.0.0.1:8080" is not an https URL: clusternet-agent only registers over https; pass --parent-url https://HOST:PORT`,
		},
		{
			name: "arguments", args: []string{"extra"},
			wantErr: `unknown command "extra" for "token"`,
		},
		{
			name: "no right to create Secrets in kube-system", forbid: true,
			wantErr: `creating a bootstrap token: you lack "create" on "secrets" in namespace "kube-system" of the parent, where kube-apiserver reads bootstrap tokens: ask a parent admin for it: ` +
				`secrets is forbidden: User "alice" cannot create resource "secrets" in API group "" in the namespace "kube-system"`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := fake.NewClientset()
			if tc.forbid {
				cs.PrependReactor("create", "secrets", func(clienttesting.Action) (bool, runtime.Object, error) {
					return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "",
						errFromString(`User "alice" cannot create resource "secrets" in API group "" in the namespace "kube-system"`))
				})
			}
			server := tc.server
			if server == "" {
				server = "https://parent.example.com:6443"
			}
			out, _, err := runCreateToken(t, parentKubeconfig(t, server), cs, tc.args...)
			if err == nil {
				t.Fatalf("no error; stdout %q", out)
			}
			if diff := cmp.Diff(tc.wantErr, err.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if tokenLine.MatchString(out) || strings.Contains(out, "regToken") {
				t.Errorf("a refused command printed a token:\n%s", out)
			}
			list, _ := cs.CoreV1().Secrets("kube-system").List(context.Background(), metav1.ListOptions{})
			if len(list.Items) != 0 {
				t.Errorf("a refused command left %d Secrets", len(list.Items))
			}
		})
	}
}

// TestCreateTokenReplacesKubectls: `create token` is the plugin's, not
// kubectl's ServiceAccount token command.
func TestCreateTokenReplacesKubectls(t *testing.T) {
	out, _, err := runCmd(t, "create", "--help")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "  token                 Create a bootstrap token for child clusters to register with\n") {
		t.Errorf("create's help does not list the plugin's token command:\n%s", out)
	}
	out, _, err = runCmd(t, "create", "token", "--help")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "service account") || !strings.Contains(out, "kubectl clusternet create token [--ttl DURATION]") {
		t.Errorf("create token --help is not the plugin's:\n%s", out)
	}
}
