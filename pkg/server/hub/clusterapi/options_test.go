package clusterapi

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"

	"github.com/clusternet/clusternet/pkg/bootstraptoken"
	"github.com/clusternet/clusternet/pkg/server/hub/certs"
)

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	ca, err := certs.NewCA("parent", time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.crt")
	notPEM := filepath.Join(dir, "not.pem")
	values := filepath.Join(dir, "values.yaml")
	notValues := filepath.Join(dir, "list.yaml")
	for file, data := range map[string]string{caFile: string(ca.CertPEM), notPEM: "hello", values: "image:\n  tag: v1\n", notValues: "- a\n"} {
		if err := os.WriteFile(file, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	on := func(edit func(*Options)) Options {
		o := Options{Namespaces: []string{"capi-fleet"}, ParentURL: testParentURL}
		if edit != nil {
			edit(&o)
		}
		return o
	}
	tests := []struct {
		name string
		o    Options
		want []string
	}{
		{name: "off by default", o: *NewOptions()},
		{name: "on", o: on(nil)},
		{name: "every namespace", o: on(func(o *Options) { o.Namespaces = []string{"*"} })},
		{name: "with a CA and values", o: on(func(o *Options) { o.ParentCAFile, o.AgentValuesFile = caFile, values })},
		{name: "a management kubeconfig alone does not turn it on",
			o:    Options{Kubeconfig: "/etc/capi.conf"},
			want: []string{`--cluster-api-kubeconfig "/etc/capi.conf" needs --cluster-api-namespaces: discovery stays off until you name the management cluster's namespaces whose Clusters the hub may act on ('*' for all)`}},
		{name: "no parent URL", o: on(func(o *Options) { o.ParentURL = "" }),
			want: []string{"--cluster-api-parent-url is required with --cluster-api-namespaces: the installed agents register at this address (e.g. https://parent.example.com:6443)"}},
		{name: "http parent URL", o: on(func(o *Options) { o.ParentURL = "http://parent:6443" }),
			want: []string{`--cluster-api-parent-url "http://parent:6443": must be an https URL with a host, e.g. https://parent.example.com:6443: clusternet-agent registers over https only`}},
		{name: "star among names", o: on(func(o *Options) { o.Namespaces = []string{"a", "*"} }),
			want: []string{`--cluster-api-namespaces ["a" "*"]: "*" means every namespace and stands alone; name namespaces or give "*"`}},
		{name: "bad namespace", o: on(func(o *Options) { o.Namespaces = []string{"Capi"} }),
			want: []string{`--cluster-api-namespaces: "Capi" is not a namespace name: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`}},
		{name: "CA file without a certificate", o: on(func(o *Options) { o.ParentCAFile = notPEM }),
			want: []string{`--cluster-api-parent-ca-file "` + notPEM + `": holds no PEM certificate`}},
		{name: "values not a map", o: on(func(o *Options) { o.AgentValuesFile = notValues }),
			want: []string{`--cluster-api-agent-values "` + notValues + `": not a YAML map of chart values: error unmarshaling JSON: while decoding JSON: json: cannot unmarshal array into Go value of type map[string]interface {}`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, err := range tc.o.Validate() {
				got = append(got, err.Error())
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Validate (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAgentValuesCannotOverrideWhatTheHubSets(t *testing.T) {
	chart := agentChart{parentURL: testParentURL, base: map[string]any{
		"parentURL": "https://elsewhere.example.com", "registrationToken": "zzzzzz.zzzzzzzzzzzzzzzz", "createNamespace": false,
		"registrationSecret": map[string]any{"create": false, "name": "my-registration"},
		"image":              map[string]any{"repository": "registry.example.com/clusternet-agent", "tag": "v9"},
	}}
	cluster := &clusterv1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "prod"}}
	tok := &bootstraptoken.Token{ID: "abcdef", Secret: "0123456789abcdef"}
	got := chart.values(cluster, tok)
	want := map[string]any{
		"parentURL": testParentURL, "registrationToken": tok.String(), "createNamespace": true, "clusterName": "prod",
		"registrationSecret": map[string]any{"create": true, "name": "my-registration"},
		"image":              map[string]any{"repository": "registry.example.com/clusternet-agent", "tag": "v9"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
	if chart.base["registrationSecret"].(map[string]any)["create"] != false {
		t.Error("values changed --cluster-api-agent-values' own map")
	}
}

func TestAgentManifests(t *testing.T) {
	chart := agentChart{parentURL: testParentURL}
	tok := &bootstraptoken.Token{ID: "abcdef", Secret: "0123456789abcdef"}
	tests := []struct {
		name        string
		cluster     string
		token       *bootstraptoken.Token
		wantArg     string
		wantSecret  bool
		wantNoArgOf string
	}{
		{name: "unregistered", cluster: "prod", token: tok, wantArg: "--cluster-name=prod", wantSecret: true},
		{name: "registered: no registration Secret", cluster: "prod", wantArg: "--cluster-name=prod"},
		{name: "a name the agent may not ask for", cluster: "prod.eu-1", token: tok, wantSecret: true, wantNoArgOf: "--cluster-name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inst, err := chart.render(&clusterv1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: tc.cluster}}, tc.token, "uid/1")
			if err != nil {
				t.Fatal(err)
			}
			kinds := make([]string, len(inst.objects))
			for i, o := range inst.objects {
				kinds[i] = o.GetKind()
			}
			if d, s := slices.Index(kinds, "Deployment"), slices.Index(kinds, "Secret"); d < s || slices.Index(kinds, "Namespace") != 0 {
				t.Errorf("objects in order %q: want the Namespace first and the Deployment after the Secret its pod reads", kinds)
			}
			if got := objectOf(inst.objects, "Secret") != nil; got != tc.wantSecret {
				t.Errorf("registration Secret rendered: %v, want %v", got, tc.wantSecret)
			}
			if ns := objectOf(inst.objects, "Namespace"); ns == nil || ns.GetName() != "clusternet-system" {
				t.Errorf("namespace clusternet-system not rendered")
			}
			args := containerArgs(t, objectOf(inst.objects, "Deployment"))
			if tc.wantArg != "" && !slices.Contains(args, tc.wantArg) {
				t.Errorf("args %q lack %s", args, tc.wantArg)
			}
			if tc.wantNoArgOf != "" && slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, tc.wantNoArgOf) }) {
				t.Errorf("args %q have %s", args, tc.wantNoArgOf)
			}
		})
	}

	t.Run("the digest ignores the token and follows the kubeconfig", func(t *testing.T) {
		cluster := &clusterv1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "prod"}}
		withToken, _ := chart.render(cluster, tok, "uid/1")
		registered, _ := chart.render(cluster, nil, "uid/1")
		rotated, _ := chart.render(cluster, nil, "uid/2")
		if withToken.digest != registered.digest {
			t.Error("the digest changes when the cluster registers: it would apply again for nothing")
		}
		if rotated.digest == registered.digest {
			t.Error("the digest ignores a rotated kubeconfig Secret")
		}
	})
}
