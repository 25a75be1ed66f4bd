package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/spf13/cobra"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"

	"github.com/clusternet/clusternet/charts"
	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/bootstraptoken"
)

// twoClusters writes a kubeconfig with contexts child (current) and
// parent; parentCA is the parent's CA certificate (DER), if any.
func twoClusters(t *testing.T, childURL, parentURL string, parentCA []byte) string {
	t.Helper()
	ca := ""
	if parentCA != nil {
		ca = ", certificate-authority-data: " + base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: parentCA}))
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	data := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- {name: child, cluster: {server: %q}}
- {name: parent, cluster: {server: %q%s}}
users: [{name: admin, user: {token: admin-token}}]
contexts:
- {name: child, context: {cluster: child, user: admin}}
- {name: parent, context: {cluster: parent, user: admin}}
current-context: child
`, childURL, parentURL, ca)
	if err := writeFile(path, data); err != nil {
		t.Fatal(err)
	}
	return path
}

// runFleetCommand runs join or unjoin (newCmd) with args against the
// kubeconfig's current context.
func runFleetCommand(t *testing.T, newCmd func(genericclioptions.RESTClientGetter, genericiooptions.IOStreams) *cobra.Command, kubeconfig string, args ...string) error {
	t.Helper()
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig = &kubeconfig
	cmd := newCmd(flags, genericiooptions.IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}})
	cmd.SetArgs(args)
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return cmd.ExecuteContext(ctx)
}

func TestJoinRefusesBadInput(t *testing.T) {
	kubeconfig := twoClusters(t, "https://child.invalid:6443", "https://parent.invalid:6443", nil)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{name: "no parent", args: nil,
			want: "join runs against the child and needs the parent too: pass --parent-kubeconfig FILE"},
		{name: "missing parent kubeconfig", args: []string{"--parent-kubeconfig", "/nonexistent/parent.yaml"},
			want: `--parent-kubeconfig "/nonexistent/parent.yaml": stat /nonexistent/parent.yaml: no such file or directory: pass the path of a kubeconfig for the parent cluster`},
		{name: "unknown parent context", args: []string{"--parent-context", "nope"},
			want: `the parent's kubeconfig (--parent-kubeconfig "", --parent-context "nope"): context "nope" does not exist: fix the flags`},
		{name: "parent is the child", args: []string{"--parent-context", "child"},
			want: `the child and the parent are the same apiserver "https://child.invalid:6443": join runs against the child (pick it with --context)`},
		{name: "plain http parent URL", args: []string{"--parent-context", "parent", "--parent-url", "http://parent.example.com"},
			want: `parent URL "http://parent.example.com" is not an https URL: clusternet-agent only registers over https; pass --parent-url https://HOST:PORT`},
		{name: "malformed token", args: []string{"--parent-context", "parent", "--bootstrap-token", "abc.def"},
			want: "--bootstrap-token: a bootstrap token is 6 and 16 characters of [a-z0-9] joined by a dot"},
		{name: "bad cluster name", args: []string{"--parent-context", "parent", "--cluster-name", "Edge_12"},
			want: `--cluster-name "Edge_12": a lowercase RFC 1123 label`},
		{name: "image without tag", args: []string{"--parent-context", "parent", "--agent-image", "ghcr.io/clusternet/clusternet-agent"},
			want: `--agent-image "ghcr.io/clusternet/clusternet-agent": give REPOSITORY:TAG or REPOSITORY@sha256:DIGEST`},
		{name: "zero timeout", args: []string{"--parent-context", "parent", "--timeout", "0s"},
			want: `--timeout "0s" must be positive`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := runFleetCommand(t, NewCmdJoin, kubeconfig, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

// TestJoinRefusesAnInsecureParent: a parent kubeconfig that skips TLS
// verification gives the agent no CA to trust the parent by.
func TestJoinRefusesAnInsecureParent(t *testing.T) {
	kubeconfig := twoClusters(t, "https://child.invalid:6443", "https://parent.invalid:6443", nil)
	data, err := os.ReadFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	insecure := strings.Replace(string(data), `server: "https://parent.invalid:6443"`, `server: "https://parent.invalid:6443", insecure-skip-tls-verify: true`, 1)
	if insecure == string(data) {
		t.Fatal("the kubeconfig has no parent server to make insecure")
	}
	if err := writeFile(kubeconfig, insecure); err != nil {
		t.Fatal(err)
	}
	err = runFleetCommand(t, NewCmdJoin, kubeconfig, "--parent-context", "parent")
	want := "your parent kubeconfig skips TLS verification (insecure-skip-tls-verify) and has no CA: the agent would have nothing to trust the parent by: add the parent's CA"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error = %v\nwant it to contain %q", err, want)
	}
}

func TestUnjoinRefusesBadInput(t *testing.T) {
	kubeconfig := twoClusters(t, "https://child.invalid:6443", "https://parent.invalid:6443", nil)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{name: "no parent", want: "unjoin runs against the child and needs the parent too"},
		{name: "missing parent kubeconfig", args: []string{"--parent-kubeconfig", "/nonexistent/parent.yaml"}, want: `--parent-kubeconfig "/nonexistent/parent.yaml"`},
		{name: "zero timeout", args: []string{"--parent-context", "parent", "--timeout", "0s"}, want: `--timeout "0s" must be positive`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := runFleetCommand(t, NewCmdUnjoin, kubeconfig, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

// TestJoinWrongParentURL: a parent URL the agent could not use fails the
// first step, before anything is made, and names --parent-url.
func TestJoinWrongParentURL(t *testing.T) {
	parent := newFakeServer(t)
	kubeconfig := twoClusters(t, "https://child.invalid:6443", parent.URL, parent.Certificate().Raw)
	port := parent.URL[strings.LastIndex(parent.URL, ":")+1:]
	for _, tc := range []struct {
		name, url, want string
	}{
		{name: "nothing listens", url: "https://127.0.0.1:1",
			want: `step 1 of 6: parent URL "https://127.0.0.1:1": "https://127.0.0.1:1" does not answer`},
		{name: "certificate for another name", url: "https://localhost:" + port,
			want: `step 1 of 6: parent URL "https://localhost:` + port + `": its certificate is not the parent's`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := runFleetCommand(t, NewCmdJoin, kubeconfig, "--parent-context", "parent", "--parent-url", tc.url)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "pass --parent-url with the parent apiserver's address as the child's pods reach it") {
				t.Errorf("error = %v\nwant it to contain %q and the fix", err, tc.want)
			}
			for _, r := range parent.log() {
				if !strings.HasPrefix(r, "parent GET ") {
					t.Errorf("join changed the parent before refusing the URL: %s", r)
				}
			}
		})
	}
}

// tokenReviewer is a parent that answers SelfSubjectReviews with err, or
// with groups.
func tokenReviewer(err error, groups ...string) func(string, []byte, string) (kubernetes.Interface, error) {
	return func(string, []byte, string) (kubernetes.Interface, error) {
		c := k8sfake.NewClientset()
		c.PrependReactor("create", "selfsubjectreviews", func(k8stesting.Action) (bool, runtime.Object, error) {
			if err != nil {
				return true, nil, err
			}
			return true, &authnv1.SelfSubjectReview{Status: authnv1.SelfSubjectReviewStatus{UserInfo: authnv1.UserInfo{Username: "system:bootstrap:abcdef", Groups: groups}}}, nil
		})
		return c, nil
	}
}

func TestJoinChecksTheToken(t *testing.T) {
	tok, err := bootstraptoken.Parse("abcdef.0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	unauthorized := apierrors.NewUnauthorized("Unauthorized")
	for _, tc := range []struct {
		name      string
		created   bool
		parentURL string
		review    func(string, []byte, string) (kubernetes.Interface, error)
		want      string
	}{
		{name: "token given with more groups than registration's", review: tokenReviewer(nil, "system:bootstrappers", bootstraptoken.RegisterClusterGroup, "system:authenticated", "system:masters"),
			want: `--bootstrap-token abcdef.<secret> authenticates in groups ["system:masters"] beyond registration's`},
		{name: "refused at a parent URL other than the kubeconfig's", parentURL: "https://10.0.0.9:6443", review: tokenReviewer(unauthorized),
			want: `at parent URL "https://10.0.0.9:6443", which is not your parent kubeconfig's "https://parent.example.com:6443": most likely it is another apiserver trusting the same CA`},
		{name: "expired or unknown token given", review: tokenReviewer(unauthorized),
			want: "--bootstrap-token abcdef.<secret>: the parent refuses it: it is expired, deleted or mistyped: make a fresh one with `kubectl clusternet create token --ttl 1h`, or leave --bootstrap-token out"},
		{name: "token given without the registration group", review: tokenReviewer(nil, "system:bootstrappers"),
			want: `--bootstrap-token abcdef.<secret> authenticates as "system:bootstrap:abcdef" with groups ["system:bootstrappers"], without "system:bootstrappers:clusternet:register-cluster-token"`},
		{name: "token given that registers", review: tokenReviewer(nil, "system:bootstrappers", bootstraptoken.RegisterClusterGroup)},
		{name: "parent refuses its own fresh token", created: true, review: tokenReviewer(unauthorized),
			want: "its kube-apiserver does not accept bootstrap tokens: run it with --enable-bootstrap-token-auth"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parentURL := tc.parentURL
			if parentURL == "" {
				parentURL = "https://parent.example.com:6443"
			}
			j := &joiner{JoinOptions: &JoinOptions{ParentURL: parentURL, parentConfig: &rest.Config{Host: "https://parent.example.com:6443"}, token: tok, clients: &fleetClients{anonymous: tc.review}}, createdToken: tc.created}
			ctx := context.Background()
			if tc.created {
				// The retries of a fresh token end with the context.
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, 2*pollInterval+pollInterval/2)
				defer cancel()
			}
			err := j.checkToken(ctx)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("checkToken: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

func TestAgentPodProblems(t *testing.T) {
	pod := func(reason, message string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "clusternet-agent-abc", Namespace: charts.Namespace, Labels: map[string]string{"app": "clusternet-agent"}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "clusternet-agent", Image: "example.com/agent:v9"}}},
			Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{
				Name: "clusternet-agent", Image: "example.com/agent:v9",
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}},
			}}},
		}
	}
	pullEvent := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "ev", Namespace: charts.Namespace},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "clusternet-agent-abc", Namespace: charts.Namespace},
		Type:           corev1.EventTypeWarning, Reason: "Failed",
		Message: `Failed to pull image "example.com/agent:v9": not found`,
	}
	for _, tc := range []struct {
		name    string
		objects []runtime.Object
		want    string
	}{
		{name: "starting", objects: []runtime.Object{pod("ContainerCreating", "")}},
		{name: "image pull back-off", objects: []runtime.Object{pod("ImagePullBackOff", `Back-off pulling image "example.com/agent:v9"`)},
			want: `the child cannot pull the agent image "example.com/agent:v9" (pod clusternet-agent-abc: ImagePullBackOff: Back-off pulling image "example.com/agent:v9"): pass --agent-image with an image the child's nodes can pull`},
		{name: "pull failed, by the kubelet's event", objects: []runtime.Object{pod("ContainerCreating", ""), pullEvent},
			want: `the child cannot pull the agent image "example.com/agent:v9" (pod clusternet-agent-abc: ErrImagePull: Failed to pull image`},
		{name: "crash loop", objects: []runtime.Object{pod("CrashLoopBackOff", "back-off 40s restarting failed container")},
			want: "the agent crashes (pod clusternet-agent-abc: back-off 40s restarting failed container): read why in the child: kubectl -n clusternet-system logs clusternet-agent-abc --previous"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			child := k8sfake.NewClientset(tc.objects...)
			// The fake ignores field selectors: select as the apiserver would.
			child.PrependReactor("list", "events", func(a k8stesting.Action) (bool, runtime.Object, error) {
				list := &corev1.EventList{}
				for _, o := range tc.objects {
					if ev, ok := o.(*corev1.Event); ok && strings.Contains(a.(k8stesting.ListAction).GetListRestrictions().Fields.String(), ev.InvolvedObject.Name) {
						list.Items = append(list.Items, *ev)
					}
				}
				return true, list, nil
			})
			err := agentPodProblem(context.Background(), &fleetClients{childKube: child})
			if tc.want == "" {
				if err != nil {
					t.Errorf("agentPodProblem = %v, want none", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

// TestAgentObjects: what join installs is the agent chart with the
// parent's URL, CA and token, every object labelled for unjoin, the
// Namespace first when join makes it.
func TestAgentObjects(t *testing.T) {
	j := &joiner{JoinOptions: &JoinOptions{
		ParentURL: "https://parent.example.com:6443", parentCA: []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"),
		ClusterName: "edge-12", AgentImage: "registry.example.com/agent:v9",
	}}
	j.token, _ = bootstraptoken.Parse("abcdef.0123456789abcdef")
	objs, err := agentObjects(j.agentValues(true))
	if err != nil {
		t.Fatal(err)
	}
	if objs[0].GetKind() != "Namespace" || objs[0].GetName() != charts.Namespace {
		t.Errorf("first object is %s, want Namespace %s", kindAndName(objs[0]), charts.Namespace)
	}
	for _, o := range objs {
		if o.GetLabels()[clusterv1beta1.LabelCreatedBy] != installedBy {
			t.Errorf("%s lacks label %s=%s", kindAndName(o), clusterv1beta1.LabelCreatedBy, installedBy)
		}
	}
	if got := agentImage(objs); got != "registry.example.com/agent:v9" {
		t.Errorf("image = %q", got)
	}
	var secret map[string]any
	for _, o := range objs {
		if o.GetKind() == "Secret" {
			secret, _, _ = unstructured.NestedMap(o.Object, "stringData")
		}
	}
	want := map[string]any{"parentURL": "https://parent.example.com:6443", "regToken": "abcdef.0123456789abcdef", "parentCA": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"}
	if diff := cmp.Diff(want, secret); diff != "" {
		t.Errorf("registration Secret (-want +got):\n%s", diff)
	}
	kept, err := agentObjects(j.agentValues(false))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range kept {
		if o.GetKind() == "Namespace" {
			t.Error("join renders the Namespace though the child has it: unjoin would delete a namespace join did not make")
		}
	}
}

func TestImageValues(t *testing.T) {
	for _, tc := range []struct {
		image string
		want  map[string]any
		bad   bool
	}{
		{image: ""},
		{image: "ghcr.io/clusternet/clusternet-agent:v0.1.0", want: map[string]any{"repository": "ghcr.io/clusternet/clusternet-agent", "tag": "v0.1.0"}},
		{image: "localhost:5000/agent:dev", want: map[string]any{"repository": "localhost:5000/agent", "tag": "dev"}},
		{image: "agent@sha256:abc", want: map[string]any{"repository": "agent", "digest": "sha256:abc"}},
		{image: "localhost:5000/agent", bad: true},
		{image: "agent:", bad: true},
		{image: "agent@md5:abc", bad: true},
	} {
		got, err := imageValues(tc.image)
		if (err != nil) != tc.bad {
			t.Errorf("imageValues(%q) error = %v, want error %v", tc.image, err, tc.bad)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" && !tc.bad {
			t.Errorf("imageValues(%q) (-want +got):\n%s", tc.image, diff)
		}
	}
}

// TestUnjoinRemovesOnlyWhatJoinInstalled: the child's objects join's
// render names go when they carry join's label, and nothing else does:
// neither unlabelled objects of those names nor labelled ones of others.
func TestUnjoinRemovesOnlyWhatJoinInstalled(t *testing.T) {
	labelled := map[string]any{clusterv1beta1.LabelCreatedBy: installedBy}
	object := func(apiVersion, kind, namespace, name string, labels map[string]any) *unstructured.Unstructured {
		u := obj(apiVersion, kind, namespace, name)
		if labels != nil {
			u.Object["metadata"].(map[string]any)["labels"] = labels
		}
		return u
	}
	objects := []runtime.Object{
		object("v1", "Namespace", "", charts.Namespace, labelled),
		object("apps/v1", "Deployment", charts.Namespace, "clusternet-agent", labelled),
		object("v1", "Secret", charts.Namespace, "clusternet-agent-cluster-registration", labelled),
		object("rbac.authorization.k8s.io/v1", "ClusterRole", "", "clusternet-agent", labelled),
		// Not join's: kept.
		object("apps/v1", "Deployment", charts.Namespace, "someone-elses", nil),
		object("rbac.authorization.k8s.io/v1", "ClusterRole", "", "admin", nil),
		// Labelled, but no name join's chart renders: a label is copied easily.
		object("rbac.authorization.k8s.io/v1", "ClusterRole", "", "copied-label", labelled),
		object("apps/v1", "Deployment", "default", "clusternet-agent", labelled),
		object("v1", "Secret", "default", "unrelated", map[string]any{"app": "clusternet-agent"}),
	}
	dyn, mapper, listKinds := fakeChildObjects(objects...)
	var errOut bytes.Buffer
	u := &unjoiner{UnjoinOptions: &UnjoinOptions{clients: &fleetClients{childDynamic: dyn, childMapper: mapper, childKube: k8sfake.NewClientset()}},
		progress: &progress{out: &errOut, of: 4}}
	line, err := u.removeAgent(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := "Removed clusternet-agent from the child: 4 objects join installed"; line != want {
		t.Errorf("line = %q, want %q", line, want)
	}
	var left []string
	for gvr := range listKinds {
		list, err := dyn.Resource(gvr).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range list.Items {
			left = append(left, kindAndName(&o))
		}
	}
	want := []string{"ClusterRole admin", "ClusterRole copied-label", "Deployment clusternet-system/someone-elses", "Deployment default/clusternet-agent", "Secret default/unrelated"}
	if diff := cmp.Diff(want, left, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("left in the child (-want +got):\n%s", diff)
	}
}

// fakeChildObjects is a child serving the agent chart's kinds, holding
// objects: its dynamic client, REST mapper and list kinds.
func fakeChildObjects(objects ...runtime.Object) (*dynamicfake.FakeDynamicClient, meta.RESTMapper, map[schema.GroupVersionResource]string) {
	mapper := meta.NewDefaultRESTMapper(nil)
	for _, k := range []struct {
		gvk      schema.GroupVersionKind
		resource string
		scope    meta.RESTScope
	}{
		{schema.GroupVersionKind{Version: "v1", Kind: "Namespace"}, "namespaces", meta.RESTScopeRoot},
		{schema.GroupVersionKind{Version: "v1", Kind: "Secret"}, "secrets", meta.RESTScopeNamespace},
		{schema.GroupVersionKind{Version: "v1", Kind: "ServiceAccount"}, "serviceaccounts", meta.RESTScopeNamespace},
		{schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, "deployments", meta.RESTScopeNamespace},
		{schema.GroupVersionKind{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRole"}, "clusterroles", meta.RESTScopeRoot},
		{schema.GroupVersionKind{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRoleBinding"}, "clusterrolebindings", meta.RESTScopeRoot},
		{schema.GroupVersionKind{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "Role"}, "roles", meta.RESTScopeNamespace},
		{schema.GroupVersionKind{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "RoleBinding"}, "rolebindings", meta.RESTScopeNamespace},
		{schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}, "customresourcedefinitions", meta.RESTScopeRoot},
	} {
		mapper.AddSpecific(k.gvk, k.gvk.GroupVersion().WithResource(k.resource), k.gvk.GroupVersion().WithResource(strings.TrimSuffix(k.resource, "s")), k.scope)
	}
	listKinds := map[schema.GroupVersionResource]string{}
	for _, m := range []string{"namespaces/NamespaceList", "secrets/SecretList", "serviceaccounts/ServiceAccountList"} {
		r, l, _ := strings.Cut(m, "/")
		listKinds[schema.GroupVersionResource{Version: "v1", Resource: r}] = l
	}
	listKinds[schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}] = "DeploymentList"
	listKinds[schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}] = "CustomResourceDefinitionList"
	for _, r := range []string{"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"} {
		listKinds[schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: strings.ToLower(r) + "s"}] = r + "List"
	}
	return dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), listKinds, objects...), mapper, listKinds
}
