package cli

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
)

const (
	id1 = "dc91021d-2361-4f6d-a404-7c33b9e01118"
	id2 = "5e0ab1f4-7c1a-4f43-9d3e-2b4f1a6c0d11"
)

// parentWithChildren is a fake parent with two registered children.
func parentWithChildren(t *testing.T) *fakeServer {
	t.Helper()
	f := newFakeServer(t)
	f.addCluster("clusternet-5l82l", "child1", id1)
	f.addCluster("clusternet-8x2kq", "child2", id2)
	return f
}

// run runs the plugin against f and returns stdout, stderr and the exit code.
func (f *fakeServer) run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	flags := []string{"--kubeconfig", f.kubeconfig(t), "--cache-dir", t.TempDir()}
	if len(args) > 0 && args[0] == "__complete" {
		// What is completed is the last argument.
		args = append(append([]string{args[0]}, flags...), args[1:]...)
	} else {
		args = append(args, flags...)
	}
	out, errOut, err := runCmd(t, args...)
	code := 0
	if err != nil {
		code = 1
	}
	return out, errOut, code
}

func TestPerClusterArgs(t *testing.T) {
	fs := rootFlagSet(newConfigFlags(streamsForTest()))
	tests := []struct {
		name      string
		args      []string
		wantOK    bool
		wantFlags ClusterFlags
		wantRest  []string
	}{
		{name: "no cluster", args: []string{"get", "pods"}},
		{name: "cluster before the verb", args: []string{"--cluster", "child1", "get", "pods", "-n", "x"}, wantOK: true,
			wantFlags: ClusterFlags{Cluster: "child1"}, wantRest: []string{"get", "pods", "-n", "x"}},
		{name: "cluster after the verb", args: []string{"logs", "-f", "web", "--cluster=child1"}, wantOK: true,
			wantFlags: ClusterFlags{Cluster: "child1"}, wantRest: []string{"logs", "-f", "web"}},
		{name: "cluster-id and child kubeconfig", args: []string{"--cluster-id", id1, "--child-kubeconfig", "/c", "exec", "web", "--", "sh", "-c", "echo --cluster x"},
			wantOK: true, wantFlags: ClusterFlags{ClusterID: id1, ChildKubeconfig: "/c"}, wantRest: []string{"exec", "web", "--", "sh", "-c", "echo --cluster x"}},
		{name: "after -- is not ours", args: []string{"exec", "web", "--", "kubectl", "--cluster", "x"}},
		{name: "kubeconfig takes --cluster itself", args: []string{"kubeconfig", "--cluster", "child1"}},
		{name: "kubeconfig after a global flag with a value", args: []string{"-n", "kubeconfig", "kubeconfig", "--cluster", "child1"}},
		{name: "a global flag's value is not the verb", args: []string{"--context", "kubeconfig", "--cluster", "child1", "get", "pods"}, wantOK: true,
			wantFlags: ClusterFlags{Cluster: "child1"}, wantRest: []string{"--context", "kubeconfig", "get", "pods"}},
		{name: "--clusters is fan-out, not per-cluster", args: []string{"get", "pods", "--clusters", "all"}},
		{name: "completing the --cluster value", args: []string{"__complete", "get", "--cluster", ""}},
		{name: "completing under --cluster", args: []string{"__complete", "--cluster", "child1", "get", ""}, wantOK: true,
			wantFlags: ClusterFlags{Cluster: "child1"}, wantRest: []string{"__complete", "get", ""}},
		{name: "--cluster without a value", args: []string{"get", "--cluster"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			flags, rest, ok := perClusterArgs(tc.args, fs)
			if ok != tc.wantOK {
				t.Fatalf("ok = %v, want %v", ok, tc.wantOK)
			}
			if !ok {
				return
			}
			if diff := cmp.Diff(tc.wantFlags, flags); diff != "" {
				t.Errorf("flags (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantRest, rest); diff != "" {
				t.Errorf("kubectl args (-want +got):\n%s", diff)
			}
		})
	}
}

func TestApplyStoresTemplatesAndClusternetObjects(t *testing.T) {
	f := newFakeServer(t)
	dir := t.TempDir()
	files := map[string]string{
		"01-helmchart.yaml":    "apiVersion: apps.clusternet.io/v1alpha1\nkind: HelmChart\nmetadata: {name: mysql, namespace: default}\nspec: {chart: mysql}\n",
		"02-namespace.yaml":    "apiVersion: v1\nkind: Namespace\nmetadata: {name: foo}\n",
		"03-deployment.yaml":   "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: my-nginx, namespace: foo}\nspec: {replicas: 3}\n",
		"04-service.yaml":      "apiVersion: v1\nkind: Service\nmetadata: {name: my-nginx-svc, namespace: foo}\nspec: {ports: [{port: 80}]}\n",
		"05-subscription.yaml": "apiVersion: apps.clusternet.io/v1alpha1\nkind: Subscription\nmetadata: {name: app-demo, namespace: default}\nspec: {}\n",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out, errOut, code := f.run(t, "apply", "-f", dir, "--validate=false")
	if code != 0 {
		t.Fatalf("apply failed: %s", errOut)
	}
	want := `helmchart.apps.clusternet.io/mysql created
namespace/foo created
deployment.apps/my-nginx created
service/my-nginx-svc created
subscription.apps.clusternet.io/app-demo created
`
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("apply output (-want +got):\n%s", diff)
	}
	wantCreates := []string{
		"parent POST /apis/apps.clusternet.io/v1alpha1/namespaces/default/helmcharts",
		"parent POST /apis/shadow/v1alpha1/namespaces",
		"parent POST /apis/shadow/v1alpha1/namespaces/foo/deployments",
		"parent POST /apis/shadow/v1alpha1/namespaces/foo/services",
		"parent POST /apis/apps.clusternet.io/v1alpha1/namespaces/default/subscriptions",
	}
	var creates []string
	for _, r := range f.log() {
		if strings.Contains(r, " POST ") {
			creates = append(creates, r)
		}
		if !strings.Contains(r, "/apis/shadow/v1alpha1/") && !strings.Contains(r, ".clusternet.io/") {
			t.Errorf("%q reached the parent's real API", r)
		}
	}
	if diff := cmp.Diff(wantCreates, creates); diff != "" {
		t.Errorf("creates (-want +got):\n%s", diff)
	}
}

func TestGetTemplatesAndClusternetKinds(t *testing.T) {
	f := parentWithChildren(t)
	f.add("parent", "apis/shadow/v1alpha1", "deployments", obj("apps/v1", "Deployment", "foo", "my-nginx"))
	f.add("parent", "apis/apps/v1", "deployments", obj("apps/v1", "Deployment", "foo", "real-one"))
	f.addObject("parent", "apps.clusternet.io/v1alpha1", "Subscription", "subscriptions", "default", "app-demo")
	tests := []struct {
		name, want, wantRequest string
		args                    []string
	}{
		{
			name: "templates", args: []string{"get", "deploy", "-n", "foo"},
			want:        "NAME       CREATED AT\nmy-nginx   2021-08-07T08:50:55Z\n",
			wantRequest: "parent GET /apis/shadow/v1alpha1/namespaces/foo/deployments",
		},
		{
			name: "clusternet kinds from the parent", args: []string{"get", "subs", "-A", "-o", "name"},
			want:        "subscription.apps.clusternet.io/app-demo\n",
			wantRequest: "parent GET /apis/apps.clusternet.io/v1alpha1/subscriptions",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(f.log())
			out, errOut, code := f.run(t, tc.args...)
			if code != 0 {
				t.Fatalf("failed: %s", errOut)
			}
			if diff := cmp.Diff(tc.want, out); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
			if got := f.log()[before:]; !contains(got, tc.wantRequest) {
				t.Errorf("requests %v lack %q", got, tc.wantRequest)
			}
			if errOut != "" {
				t.Errorf("stderr = %q, want nothing (the shadow group's short names must not show)", errOut)
			}
		})
	}
}

func TestAPIResourcesLeaveTheShadowGroupOut(t *testing.T) {
	f := newFakeServer(t)
	out, errOut, code := f.run(t, "api-resources", "-o", "name")
	if code != 0 {
		t.Fatalf("failed: %s", errOut)
	}
	if strings.Contains(out, ".shadow") || !strings.Contains(out, "deployments.apps\n") {
		t.Errorf("api-resources:\n%s", out)
	}
}

func TestSubresourcesOtherThanScaleAreRefused(t *testing.T) {
	f := newFakeServer(t)
	_, errOut, code := f.run(t, "get", "deploy", "my-nginx", "-n", "foo", "--subresource", "status")
	if code == 0 || !strings.Contains(errOut, `subresource "status" of deployments is not served for templates`) {
		t.Errorf("exit %d, stderr %q: want the refusal", code, errOut)
	}
	if len(f.log()) != 0 {
		t.Errorf("the refused request reached the server: %v", f.log())
	}
}

func TestPerClusterMode(t *testing.T) {
	f := parentWithChildren(t)
	f.addObject("child:"+id1, "v1", "Pod", "pods", "default", "web")
	f.addObject("child:"+id2, "v1", "Pod", "pods", "default", "other")
	tests := []struct {
		name, want, wantErr, wantRequest string
		args                             []string
	}{
		{name: "by name", args: []string{"--cluster", "child1", "get", "pods", "-o", "name"}, want: "pod/web\n",
			wantRequest: "child:" + id1 + " GET /api/v1/namespaces/default/pods"},
		{name: "by id, flag after the verb", args: []string{"get", "pods", "-o", "name", "--cluster-id=" + id2}, want: "pod/other\n",
			wantRequest: "child:" + id2 + " GET /api/v1/namespaces/default/pods"},
		{name: "by namespace/name", args: []string{"--cluster", "clusternet-5l82l/child1", "get", "pod", "web", "-o", "name"}, want: "pod/web\n"},
		{name: "unknown cluster lists the known ones", args: []string{"--cluster", "nope", "get", "pods"},
			wantErr: `cluster "nope" not found: it is neither the name nor the cluster id of a ManagedCluster; known clusters: child1 (namespace clusternet-5l82l, id ` + id1 + `), child2 (namespace clusternet-8x2kq, id ` + id2 + `)`},
		{name: "conflicting flags", args: []string{"--cluster", "child1", "--cluster-id", id2, "get", "pods"},
			wantErr: "--cluster \"child1\" and --cluster-id \"" + id2 + "\" name different clusters"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(f.log())
			out, errOut, code := f.run(t, tc.args...)
			if tc.wantErr != "" {
				if code == 0 || !strings.Contains(errOut, tc.wantErr) {
					t.Fatalf("exit %d, stderr %q; want an error containing %q", code, errOut, tc.wantErr)
				}
				return
			}
			if code != 0 {
				t.Fatalf("failed: %s", errOut)
			}
			if diff := cmp.Diff(tc.want, out); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
			if tc.wantRequest != "" && !contains(f.log()[before:], tc.wantRequest) {
				t.Errorf("requests %v lack %q", f.log()[before:], tc.wantRequest)
			}
		})
	}
}

func TestPerClusterPassThrough(t *testing.T) {
	f := parentWithChildren(t)
	childKubeconfig := filepath.Join(t.TempDir(), "child")
	if err := os.WriteFile(childKubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://child.example:6443"}}]
users: [{name: viewer, user: {token: child-token}}]
contexts: [{name: c, context: {cluster: c, user: viewer}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := f.run(t, "--cluster", "child1", "--child-kubeconfig", childKubeconfig, "get", "pods"); code != 0 {
		t.Fatalf("failed: %s", errOut)
	}
	got := f.headersOf("child:" + id1)
	want := map[string]string{"Authorization": "", "Impersonate-User": "clusternet", "Impersonate-Extra-Clusternet-Token": "child-token"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("identity headers to the child (-want +got):\n%s", diff)
	}
	if _, errOut, code := f.run(t, "--cluster", "child2", "get", "pods"); code != 0 {
		t.Fatalf("failed: %s", errOut)
	}
	want = map[string]string{"Authorization": "Bearer parent-token", "Impersonate-User": "", "Impersonate-Extra-Clusternet-Token": ""}
	if diff := cmp.Diff(want, f.headersOf("child:"+id2)); diff != "" {
		t.Errorf("identity headers in impersonation mode (-want +got):\n%s", diff)
	}
}

func TestFanoutGet(t *testing.T) {
	f := parentWithChildren(t)
	f.addObject("child:"+id1, "v1", "Pod", "pods", "default", "web")
	f.addObject("child:"+id1, "v1", "Pod", "pods", "kube-system", "dns")
	f.addObject("child:"+id2, "v1", "Pod", "pods", "default", "other")
	tests := []struct {
		name, want string
		args       []string
	}{
		{name: "all clusters, all namespaces", args: []string{"get", "pods", "-A", "--clusters", "all"},
			want: "CLUSTER   NAMESPACE     NAME    CREATED AT\n" +
				"child1    default       web     2021-08-07T08:50:55Z\n" +
				"child1    kube-system   dns     2021-08-07T08:50:55Z\n" +
				"child2    default       other   2021-08-07T08:50:55Z\n"},
		{name: "named clusters, by name and id", args: []string{"get", "pods", "--clusters", "child2," + id1},
			want: "CLUSTER   NAME    CREATED AT\nchild2    other   2021-08-07T08:50:55Z\nchild1    web     2021-08-07T08:50:55Z\n"},
		{name: "no headers", args: []string{"get", "pods", "--clusters", "child1", "--no-headers"},
			want: "child1   web   2021-08-07T08:50:55Z\n"},
		{name: "names", args: []string{"get", "pods", "-A", "--clusters", "all", "-o", "name"},
			want: "child1 pod/web\nchild1 pod/dns\nchild2 pod/other\n"},
		{name: "custom columns get CLUSTER first", args: []string{"get", "pods", "--clusters", "all", "-o", "custom-columns=NAME:.metadata.name"},
			want: "CLUSTER   NAME\nchild1    web\nchild2    other\n"},
		{name: "jsonpath over the list", args: []string{"get", "pods", "--clusters", "all", "-o", `jsonpath={range .items[*]}{.metadata.annotations.clusters\.clusternet\.io/cluster-id}{" "}{.metadata.name}{"\n"}{end}`},
			want: id1 + " web\n" + id2 + " other\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := f.run(t, tc.args...)
			if code != 0 {
				t.Fatalf("failed: %s", errOut)
			}
			if diff := cmp.Diff(tc.want, out); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("json", func(t *testing.T) {
		out, errOut, code := f.run(t, "get", "pods", "--clusters", "child1", "-o", "json")
		if code != 0 {
			t.Fatalf("failed: %s", errOut)
		}
		var list struct {
			Kind  string
			Items []struct {
				Metadata struct {
					Name        string
					Annotations map[string]string
				}
			}
		}
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			t.Fatal(err)
		}
		if list.Kind != "List" || len(list.Items) != 1 || list.Items[0].Metadata.Annotations[AnnotationClusterName] != "child1" ||
			list.Items[0].Metadata.Annotations[AnnotationClusterID] != id1 {
			t.Errorf("json output: %s", out)
		}
	})

	t.Run("a failing cluster is reported and the others printed", func(t *testing.T) {
		g := parentWithChildren(t)
		g.addObject("child:"+id1, "v1", "Pod", "pods", "default", "web")
		g.addObject("child:"+id2, "v1", "Pod", "pods", "default", "other")
		// child2 has no pod "web": its NotFound is its failure.
		out, errOut, code := g.run(t, "get", "pods", "web", "--clusters", "child1,child2")
		if code == 0 {
			t.Errorf("exit 0, want non-zero when a cluster fails")
		}
		if want := "CLUSTER   NAME   CREATED AT\nchild1    web    2021-08-07T08:50:55Z\n"; out != want {
			t.Errorf("stdout = %q, want %q", out, want)
		}
		if !strings.Contains(errOut, "error: cluster child2: pods \"web\" not found") || !strings.Contains(errOut, "1 of 2 clusters failed: child2") {
			t.Errorf("stderr = %q", errOut)
		}
	})

	t.Run("unknown cluster", func(t *testing.T) {
		_, errOut, code := f.run(t, "get", "pods", "--clusters", "child1,nope")
		if code == 0 || !strings.Contains(errOut, `cluster "nope" not found`) {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	})

	t.Run("watch is refused", func(t *testing.T) {
		_, errOut, code := f.run(t, "get", "pods", "-w", "--clusters", "all")
		if code == 0 || !strings.Contains(errOut, "--watch cannot be used with --clusters") {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	})
}

func TestKubeconfig(t *testing.T) {
	f := parentWithChildren(t)
	childKubeconfig := filepath.Join(t.TempDir(), "child")
	if err := os.WriteFile(childKubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://child.example:6443"}}]
users: [{name: viewer, user: {token: child-token}}]
contexts: [{name: c, context: {cluster: c, user: viewer}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Run("impersonation", func(t *testing.T) {
		out, errOut, code := f.run(t, "kubeconfig", "--cluster", "child1")
		if code != 0 {
			t.Fatalf("failed: %s", errOut)
		}
		cfg, err := clientcmd.Load([]byte(out))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := cfg.Clusters["child1"].Server, f.URL+"/apis/proxies.clusternet.io/v1alpha1/sockets/"+id1+"/proxy/direct"; got != want {
			t.Errorf("server = %q, want %q", got, want)
		}
		if len(cfg.Clusters["child1"].CertificateAuthorityData) == 0 {
			t.Error("the parent's CA is not in the kubeconfig")
		}
		if u := cfg.AuthInfos["child1"]; u.Token != "parent-token" || u.Impersonate != "" {
			t.Errorf("user = %+v, want the parent's token and no impersonation", u)
		}
		if cfg.CurrentContext != "child1" {
			t.Errorf("current context %q", cfg.CurrentContext)
		}
	})
	t.Run("pass-through to a file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "out")
		_, errOut, code := f.run(t, "kubeconfig", "--cluster", id2, "--child-kubeconfig", childKubeconfig, "-o", path)
		if code != 0 {
			t.Fatalf("failed: %s", errOut)
		}
		cfg, err := clientcmd.LoadFromFile(path)
		if err != nil {
			t.Fatal(err)
		}
		u := cfg.AuthInfos["child2"]
		if u == nil {
			t.Fatalf("no user child2 in %+v", cfg.AuthInfos)
		}
		if u.Token != "" || u.Impersonate != "clusternet" || !cmp.Equal(u.ImpersonateUserExtra, map[string][]string{"clusternet-token": {"child-token"}}) {
			t.Errorf("user = %+v, want the seed's pass-through of the child token", u)
		}
		if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("file mode: %v %v", st.Mode(), err)
		}
	})
	t.Run("needs --cluster", func(t *testing.T) {
		out, errOut, code := f.run(t, "kubeconfig")
		if code == 0 || !strings.Contains(errOut, "--cluster is required") || !strings.Contains(out, "Usage:") {
			t.Errorf("exit %d, stdout %q stderr %q: want the error and usage", code, out, errOut)
		}
	})
	t.Run("--child-kubeconfig alone is a mistake", func(t *testing.T) {
		_, errOut, code := f.run(t, "get", "pods", "--child-kubeconfig", childKubeconfig)
		if code == 0 || !strings.Contains(errOut, "--child-kubeconfig needs --cluster") {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	})
}

func TestHelpSaysKubectlClusternet(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"get", "--help"}, {"apply", "--help"}, {"kubeconfig", "--help"}} {
		out, _, err := runCmd(t, args...)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, "kubectl-clusternet") {
			t.Errorf("%v help names the binary, not the plugin:\n%s", args, out)
		}
		if !strings.Contains(out, "kubectl clusternet") {
			t.Errorf("%v help does not say kubectl clusternet:\n%s", args, out)
		}
	}
	out, _, _ := runCmd(t, "apply", "--help")
	if !strings.Contains(out, "  kubectl clusternet apply -f ./pod.json") {
		t.Errorf("apply's examples should say kubectl clusternet:\n%s", out)
	}
}

func TestCompletion(t *testing.T) {
	f := parentWithChildren(t)
	out, errOut, code := f.run(t, "__complete", "get", "pods", "--cluster", "")
	if code != 0 {
		t.Fatalf("failed: %s", errOut)
	}
	if !strings.HasPrefix(out, "child1\nchild2\n:4\n") {
		t.Errorf("completion of --cluster = %q", out)
	}
	out, _, _ = f.run(t, "__complete", "get", "pods", "--clusters", "child1,")
	if !strings.HasPrefix(out, "child1,child1\nchild1,child2\n") {
		t.Errorf("completion of --clusters = %q", out)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestResolveCluster(t *testing.T) {
	mc := func(ns, name, id string) clusterv1beta1.ManagedCluster {
		return clusterv1beta1.ManagedCluster{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec:       clusterv1beta1.ManagedClusterSpec{ClusterID: types.UID(id)},
		}
	}
	clusters := []clusterv1beta1.ManagedCluster{mc("ns-a", "edge", id1), mc("ns-b", "edge", id2), mc("ns-c", "cloud", "c-id")}
	listed := func(context.Context) ([]clusterv1beta1.ManagedCluster, error) { return clusters, nil }
	forbidden := func(context.Context) ([]clusterv1beta1.ManagedCluster, error) {
		return nil, errors.New(`managedclusters.clusters.clusternet.io is forbidden`)
	}
	tests := []struct {
		name    string
		list    clusterLister
		arg     string
		want    Cluster
		wantErr string
	}{
		{name: "by name", list: listed, arg: "cloud", want: Cluster{Name: "cloud", Namespace: "ns-c", ID: "c-id"}},
		{name: "by id", list: listed, arg: id2, want: Cluster{Name: "edge", Namespace: "ns-b", ID: id2}},
		{name: "by namespace/name", list: listed, arg: "ns-a/edge", want: Cluster{Name: "edge", Namespace: "ns-a", ID: id1}},
		{name: "ambiguous name", list: listed, arg: "edge", wantErr: `cluster "edge" is ambiguous: edge (namespace ns-a, id ` + id1 + `), edge (namespace ns-b, id ` + id2 + `) share that name; use the cluster id or <namespace>/<name> instead`},
		{name: "unknown", list: listed, arg: "x", wantErr: `cluster "x" not found`},
		{name: "an id when the list is forbidden", list: forbidden, arg: id1, want: Cluster{ID: id1}},
		{name: "a name when the list is forbidden", list: forbidden, arg: "edge", wantErr: "is forbidden"},
		{name: "no clusters", list: func(context.Context) ([]clusterv1beta1.ManagedCluster, error) { return nil, nil }, arg: "x",
			wantErr: "known clusters: none (no child cluster has registered with this parent"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := resolveCluster(context.Background(), tc.list, tc.arg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("cluster (-want +got):\n%s", diff)
			}
		})
	}
}
