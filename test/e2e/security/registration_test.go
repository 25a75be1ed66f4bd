package security

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	proxiesv1alpha1 "github.com/clusternet/clusternet/pkg/apis/proxies/v1alpha1"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	"github.com/clusternet/clusternet/pkg/seal"
	"github.com/clusternet/clusternet/test/e2e/e2eutil"
	"github.com/clusternet/clusternet/test/framework"
	"github.com/clusternet/clusternet/test/testbed"
)

// asToken is a parent client that holds nothing but token.
func asToken(t *testing.T, parent *testbed.Cluster, token string) *rest.Config {
	t.Helper()
	return &rest.Config{Host: parent.URL, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAFile: parent.CAFile}}
}

func clients(t *testing.T, cfg *rest.Config) (kubernetes.Interface, versioned.Interface) {
	t.Helper()
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cn, err := versioned.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return kube, cn
}

// expectRefused fails unless err is a refusal (Forbidden, or AlreadyExists
// for a claim of something taken) whose message contains rule.
func expectRefused(t *testing.T, what string, err error, rule string) {
	t.Helper()
	switch {
	case err == nil:
		t.Errorf("%s: allowed, want refused", what)
	case !apierrors.IsForbidden(err) && !apierrors.IsAlreadyExists(err):
		t.Errorf("%s: %v, want Forbidden", what, err)
	case !strings.Contains(err.Error(), rule):
		t.Errorf("%s: refused with %q, which does not name the rule %q", what, err, rule)
	}
}

// newRequest is a registration request as an agent makes it, for cluster
// id, with a key the caller holds.
func newRequest(t *testing.T, id string, mutate func(*clusterv1beta1.ClusterRegistrationRequestSpec)) *clusterv1beta1.ClusterRegistrationRequest {
	t.Helper()
	key, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := seal.MarshalPublicKey(key.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	crr := &clusterv1beta1.ClusterRegistrationRequest{
		ObjectMeta: metav1.ObjectMeta{Name: clusterv1beta1.NamePrefix + id},
		Spec:       clusterv1beta1.ClusterRegistrationRequestSpec{ClusterID: types.UID(id), PublicKey: pub},
	}
	if mutate != nil {
		mutate(&crr.Spec)
	}
	return crr
}

// TestBootstrapTokenHolder plays whoever holds the shared bootstrap token (any
// new child, a leaked agent Secret): it must not get another cluster's
// credentials, nor claim another cluster's id, name or namespace, nor a
// namespace that means something in the parent.
func TestBootstrapTokenHolder(t *testing.T) {
	tb := testbed.ForTest(t, 1)
	parent, child := tb.Parent, tb.Children[0]
	e2eutil.SetUpParent(t, parent)
	victim := e2eutil.RegisterChildren(t, parent, []*testbed.Cluster{child}, func(int) []string { return []string{"--cluster-name", "victim"} })[0]
	_, attacker := clients(t, asToken(t, parent, framework.BootstrapToken(parent)))
	crrs := attacker.ClustersV1beta1().ClusterRegistrationRequests()
	ctx := context.Background()

	t.Run("another cluster's request holds no credential it can use", func(t *testing.T) {
		// Cluster ids are kube-system UIDs and the token may not list
		// requests, so this needs the id from elsewhere: assume it leaked.
		got, err := crrs.Get(ctx, clusterv1beta1.NamePrefix+victim.ID, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Status.Token) != 0 {
			t.Fatalf("status.token holds the victim's plain token")
		}
		if len(got.Status.SealedToken) == 0 {
			t.Fatalf("status.sealedToken is empty: nothing to attack, so this test would prove nothing")
		}
		mine, err := seal.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := seal.Open(mine, got.Status.SealedToken, []byte(got.Name)); err == nil {
			t.Error("another key opened the victim's sealed token")
		}
		// The sealed value, as the API shows it, is no bearer token.
		_, withSealed := clients(t, asToken(t, parent, base64.StdEncoding.EncodeToString(got.Status.SealedToken)))
		_, err = withSealed.ClustersV1beta1().ManagedClusters(victim.Namespace).Get(ctx, victim.Name, metav1.GetOptions{})
		if !apierrors.IsUnauthorized(err) {
			t.Errorf("the sealed token as a bearer token: %v, want Unauthorized", err)
		}
		_, err = crrs.List(ctx, metav1.ListOptions{})
		expectRefused(t, "listing requests to find cluster ids", err, `cannot list resource "clusterregistrationrequests"`)
		// Agents wait with reads from the apiserver's cache
		// (resourceVersion 0, registration.AwaitAnswer): the same verb, so
		// the same view of another's request and the same refusals.
		cached, err := crrs.Get(ctx, clusterv1beta1.NamePrefix+victim.ID, metav1.GetOptions{ResourceVersion: "0"})
		if err != nil {
			t.Fatal(err)
		}
		if len(cached.Status.Token) != 0 || !bytes.Equal(cached.Status.SealedToken, got.Status.SealedToken) {
			t.Errorf("a read from the cache shows status.token %q and another sealed token than a read from etcd", cached.Status.Token)
		}
		_, err = crrs.List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		expectRefused(t, "listing requests from the cache", err, `cannot list resource "clusterregistrationrequests"`)
		_, err = crrs.Watch(ctx, metav1.ListOptions{ResourceVersion: "0"})
		expectRefused(t, "watching requests from the cache", err, `cannot watch resource "clusterregistrationrequests"`)
	})

	t.Run("its requests queue in a priority level of their own", func(t *testing.T) {
		want := e2eutil.MustKubectl(t, parent, "", "get", "prioritylevelconfiguration", "clusternet-registration", "-o", "jsonpath={.metadata.uid}")
		cfg := asToken(t, parent, framework.BootstrapToken(parent))
		var got string
		cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
			return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
				resp, err := rt.RoundTrip(req)
				if err == nil {
					got = resp.Header.Get("X-Kubernetes-PF-PriorityLevel-UID")
				}
				return resp, err
			})
		}
		_, cn := clients(t, cfg)
		_, _ = cn.ClustersV1beta1().ClusterRegistrationRequests().Get(ctx, clusterv1beta1.NamePrefix+victim.ID, metav1.GetOptions{})
		if got == "" || got != want {
			t.Errorf("the bootstrap token's request ran in priority level %q, want clusternet-registration (%s)", got, want)
		}
	})

	t.Run("claiming a registered cluster's id gets nothing", func(t *testing.T) {
		_, err := crrs.Create(ctx, newRequest(t, victim.ID, nil), metav1.CreateOptions{})
		expectRefused(t, "a second request for the victim's id", err, "already exists")
		got, err := crrs.Get(ctx, clusterv1beta1.NamePrefix+victim.ID, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got.Spec.PublicKey = newRequest(t, victim.ID, nil).Spec.PublicKey
		_, err = crrs.Update(ctx, got, metav1.UpdateOptions{})
		expectRefused(t, "replacing the victim's key", err, `cannot update resource "clusterregistrationrequests"`)
		got.Status.Result = nil
		_, err = crrs.UpdateStatus(ctx, got, metav1.UpdateOptions{})
		expectRefused(t, "resetting the victim's answer", err, `cannot update resource "clusterregistrationrequests/status"`)
	})

	admin := e2eutil.ClusternetClient(t, parent).ClustersV1beta1().ClusterRegistrationRequests()
	for _, tc := range []struct {
		name   string
		mutate func(*clusterv1beta1.ClusterRegistrationRequestSpec)
		want   string
	}{
		{name: "the templates' namespace", mutate: func(s *clusterv1beta1.ClusterRegistrationRequestSpec) { s.ClusterNamespace = "clusternet-reserved" },
			want: `spec.clusterNamespace "clusternet-reserved" is reserved`},
		{name: "the hub's namespace", mutate: func(s *clusterv1beta1.ClusterRegistrationRequestSpec) { s.ClusterNamespace = "clusternet-system" },
			want: `spec.clusterNamespace "clusternet-system" is reserved`},
		{name: "kube-system", mutate: func(s *clusterv1beta1.ClusterRegistrationRequestSpec) { s.ClusterNamespace = "kube-system" },
			want: `spec.clusterNamespace "kube-system" is reserved`},
		{name: "kube-anything, even one that does not exist", mutate: func(s *clusterv1beta1.ClusterRegistrationRequestSpec) { s.ClusterNamespace = "kube-later" },
			want: `spec.clusterNamespace "kube-later" is reserved`},
		{name: "default", mutate: func(s *clusterv1beta1.ClusterRegistrationRequestSpec) { s.ClusterNamespace = "default" },
			want: `spec.clusterNamespace "default" is reserved`},
		{name: "a team's existing namespace", mutate: func(s *clusterv1beta1.ClusterRegistrationRequestSpec) { s.ClusterNamespace = "team-a" },
			want: `spec.clusterNamespace "team-a" already exists in the parent and is not this cluster's`},
		{name: "the victim's dedicated namespace", mutate: func(s *clusterv1beta1.ClusterRegistrationRequestSpec) { s.ClusterNamespace = victim.Namespace },
			want: fmt.Sprintf("spec.clusterNamespace %q already exists in the parent and is not this cluster's", victim.Namespace)},
		{name: "the victim's name", mutate: func(s *clusterv1beta1.ClusterRegistrationRequestSpec) { s.ClusterName = "victim" },
			want: `spec.clusterName "victim" is taken by another cluster`},
		{name: "the victim's identity label", mutate: func(s *clusterv1beta1.ClusterRegistrationRequestSpec) {
			s.ClusterLabels = map[string]string{clusterv1beta1.LabelClusterID: victim.ID}
		}, want: `spec.clusterLabels["clusters.clusternet.io/cluster-id"]: labels under "clusters.clusternet.io/" are reserved`},
		{name: "no key to seal to", mutate: func(s *clusterv1beta1.ClusterRegistrationRequestSpec) { s.PublicKey = nil },
			want: "spec.publicKey is empty"},
	} {
		t.Run("claiming "+tc.name+" is denied", func(t *testing.T) {
			if tc.name == "a team's existing namespace" {
				e2eutil.MustKubectl(t, parent, "", "create", "namespace", "team-a")
			}
			crr := newRequest(t, uuid.NewString(), tc.mutate)
			if _, err := crrs.Create(ctx, crr, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			var got *clusterv1beta1.ClusterRegistrationRequest
			e2eutil.WaitFor(t, 20*time.Second, "the hub's answer", func(ctx context.Context) (bool, string) {
				var err error
				got, err = crrs.Get(ctx, crr.Name, metav1.GetOptions{})
				return err == nil && got.Status.Result != nil, fmt.Sprint(err)
			})
			if *got.Status.Result != clusterv1beta1.RequestDenied || !strings.Contains(got.Status.ErrorMessage, tc.want) {
				t.Errorf("answer %s %q, want Denied naming %q", *got.Status.Result, got.Status.ErrorMessage, tc.want)
			}
			if len(got.Status.SealedToken) != 0 || got.Status.DedicatedNamespace != "" {
				t.Errorf("a denied request got credentials or a namespace: %+v", got.Status)
			}
			if out := e2eutil.MustKubectl(t, parent, "", "get", "ns", "-l", clusterv1beta1.LabelClusterID+"="+string(crr.Spec.ClusterID), "-o", "name"); out != "" {
				t.Errorf("a denied request got namespace %s", out)
			}
			if err := admin.Delete(ctx, crr.Name, metav1.DeleteOptions{}); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestAgentIdentity plays a compromised child: with exactly the parent
// credentials its agent holds, it may report its own status, read what it
// is handed, and nothing else.
func TestAgentIdentity(t *testing.T) {
	tb := testbed.ForTest(t, 2)
	parent := tb.Parent
	e2eutil.SetUpParent(t, parent, "--agent-token-ttl=2h")
	ctx := context.Background()

	// Cluster A registers the seed's way, the token in the registration Secret.
	a := &e2eutil.Child{Cluster: tb.Children[0], ID: e2eutil.KubeSystemUID(t, tb.Children[0])}
	e2eutil.MustKubectl(t, a.Cluster, "", "create", "namespace", "clusternet-system")
	e2eutil.MustKubectl(t, a.Cluster, "", "create", "secret", "generic", "-n", "clusternet-system", "clusternet-agent-cluster-registration",
		"--from-literal=parentURL="+parent.URL, "--from-literal=regToken="+framework.BootstrapToken(parent))
	e2eutil.StartBinary(t, "agent-a", "agent", "--kubeconfig", a.Kubeconfig, "--parent-ca-file", parent.CAFile, "--cluster-status-update-frequency=2s")
	b := e2eutil.RegisterChildren(t, parent, tb.Children[1:], nil)[0]
	e2eutil.WaitFor(t, 60*time.Second, "cluster A registered with its tunnel up", func(ctx context.Context) (bool, string) {
		out, _, _ := e2eutil.Kubectl(t, parent, "", "get", "mcls", "-A", "-l", clusterv1beta1.LabelClusterID+"="+a.ID,
			"-o", `jsonpath={.items[0].metadata.namespace} {.items[0].metadata.name} {.items[0].status.useSocket}`)
		f := strings.Fields(out)
		if len(f) != 3 || f[2] != "true" {
			return false, out
		}
		a.Namespace, a.Name = f[0], f[1]
		return true, ""
	})

	t.Run("the bootstrap token is gone from the child once registered", func(t *testing.T) {
		keys := e2eutil.MustKubectl(t, a.Cluster, "", "get", "secret", "-n", "clusternet-system", "clusternet-agent-cluster-registration", "-o", "go-template={{range $k, $v := .data}}{{$k}} {{end}}")
		if strings.Contains(keys, "regToken") {
			t.Errorf("registration Secret keys %q still hold regToken", keys)
		}
	})

	creds, err := a.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	secret, err := creds.CoreV1().Secrets("clusternet-system").Get(ctx, "clusternet-agent-credentials", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	token := string(secret.Data["token"])

	t.Run("its token is bound and expires", func(t *testing.T) {
		claims := jwtClaims(t, token)
		if _, legacy := claims["kubernetes.io/serviceaccount/secret.name"]; legacy {
			t.Errorf("a legacy Secret-based token, which never expires: %v", claims)
		}
		exp, iat := claims["exp"].(float64), claims["iat"].(float64)
		if life := time.Duration(exp-iat) * time.Second; life != 2*time.Hour {
			t.Errorf("token lives %s, want the hub's --agent-token-ttl 2h", life)
		}
		if got := string(secret.Data["tokenExpiration"]); got != time.Unix(int64(exp), 0).UTC().Format(time.RFC3339) {
			t.Errorf("stored tokenExpiration %q does not match the token's exp %v", got, exp)
		}
	})

	t.Run("its dedicated namespace enforces Pod Security restricted", func(t *testing.T) {
		got := e2eutil.MustKubectl(t, parent, "", "get", "ns", a.Namespace, "-o", `jsonpath={.metadata.labels.pod-security\.kubernetes\.io/enforce}`)
		if got != "restricted" {
			t.Errorf("enforce label %q, want restricted", got)
		}
	})

	kube, cn := clients(t, asToken(t, parent, token))
	t.Run("what its loops use is allowed", func(t *testing.T) {
		mc, err := cn.ClustersV1beta1().ManagedClusters(a.Namespace).Get(ctx, a.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cn.ClustersV1beta1().ManagedClusters(a.Namespace).UpdateStatus(ctx, mc, metav1.UpdateOptions{}); err != nil && !apierrors.IsConflict(err) {
			t.Errorf("updating its own status: %v", err)
		}
		if _, err := cn.AppsV1alpha1().Descriptions(a.Namespace).List(ctx, metav1.ListOptions{}); err != nil {
			t.Errorf("listing its Descriptions: %v", err)
		}
		if _, err := cn.ClustersV1beta1().ClusterRegistrationRequests().Get(ctx, clusterv1beta1.NamePrefix+a.ID, metav1.GetOptions{}); err != nil {
			t.Errorf("reading its own request (where its renewed token is): %v", err)
		}
	})

	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "miner"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
	// A request's answer carries the CA bundle its agent trusts the parent
	// with (renewals move running agents to it): only the hub writes it.
	rewriteAnswer := func(id string) func() error {
		return func() error {
			crr := &clusterv1beta1.ClusterRegistrationRequest{ObjectMeta: metav1.ObjectMeta{Name: clusterv1beta1.NamePrefix + id},
				Status: clusterv1beta1.ClusterRegistrationRequestStatus{CACertificate: []byte("an attacker's CA")}}
			_, err := cn.ClustersV1beta1().ClusterRegistrationRequests().UpdateStatus(ctx, crr, metav1.UpdateOptions{})
			return err
		}
	}
	for _, tc := range []struct {
		name string
		try  func() error
		rule string
	}{
		{"run a pod in its namespace", func() error {
			_, err := kube.CoreV1().Pods(a.Namespace).Create(ctx, pod, metav1.CreateOptions{})
			return err
		}, `cannot create resource "pods"`},
		{"list Secrets in its namespace", func() error {
			_, err := kube.CoreV1().Secrets(a.Namespace).List(ctx, metav1.ListOptions{})
			return err
		}, `cannot list resource "secrets"`},
		{"read a Secret of kube-system", func() error {
			_, err := kube.CoreV1().Secrets("kube-system").Get(ctx, "bootstrap-token-x", metav1.GetOptions{})
			return err
		}, `cannot get resource "secrets"`},
		{"bind itself a role", func() error {
			_, err := kube.RbacV1().RoleBindings(a.Namespace).Create(ctx, roleBinding("cluster-admin"), metav1.CreateOptions{})
			return err
		}, `cannot create resource "rolebindings"`},
		{"relabel its namespace", func() error {
			_, err := kube.CoreV1().Namespaces().Patch(ctx, a.Namespace, types.MergePatchType, []byte(`{"metadata":{"labels":{"pod-security.kubernetes.io/enforce":"privileged"}}}`), metav1.PatchOptions{})
			return err
		}, `cannot patch resource "namespaces"`},
		{"relabel its ManagedCluster into other Subscriptions", func() error {
			_, err := cn.ClustersV1beta1().ManagedClusters(a.Namespace).Patch(ctx, a.Name, types.MergePatchType, []byte(`{"metadata":{"labels":{"env":"prod"}}}`), metav1.PatchOptions{})
			return err
		}, "is a cluster agent: it may update only the status of its ManagedCluster (managedclusters/status) and its labels under node.clusternet.io/, feature.node.kubernetes.io/ (the node labels it aggregates), not env"},
		{"write a Description for the hub to push", func() error {
			_, err := cn.AppsV1alpha1().Descriptions(a.Namespace).Create(ctx, description(), metav1.CreateOptions{})
			return err
		}, `cannot create resource "descriptions"`},
		{"rewrite what the hub pushes into its cluster", func() error {
			hub := e2eutil.ClusternetClient(t, parent).AppsV1alpha1().Descriptions(a.Namespace)
			made, err := hub.Create(ctx, description(), metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = hub.Delete(ctx, made.Name, metav1.DeleteOptions{}) }()
			_, err = cn.AppsV1alpha1().Descriptions(a.Namespace).Patch(ctx, made.Name, types.MergePatchType,
				[]byte(`{"spec":{"raw":[{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"forged"}}]}}`), metav1.PatchOptions{})
			return err
		}, "is a cluster agent: it may change only the finalizers of a Description"},
		{"read another cluster's ManagedCluster", func() error {
			_, err := cn.ClustersV1beta1().ManagedClusters(b.Namespace).Get(ctx, b.Name, metav1.GetOptions{})
			return err
		}, `cannot get resource "managedclusters"`},
		{"report another cluster's status", func() error {
			mc := &clusterv1beta1.ManagedCluster{ObjectMeta: metav1.ObjectMeta{Name: b.Name, Namespace: b.Namespace}}
			_, err := cn.ClustersV1beta1().ManagedClusters(b.Namespace).UpdateStatus(ctx, mc, metav1.UpdateOptions{})
			return err
		}, `cannot update resource "managedclusters/status"`},
		{"rewrite a Subscription's status (what it says is bound and ready)", func() error {
			sub := &appsv1alpha1.Subscription{ObjectMeta: metav1.ObjectMeta{Name: "app-demo", Namespace: "default"},
				Status: appsv1alpha1.SubscriptionStatus{BindingClusters: []string{a.Namespace + "/" + a.Name}, BoundClusters: 1, Ready: "1/1"}}
			_, err := cn.AppsV1alpha1().Subscriptions("default").UpdateStatus(ctx, sub, metav1.UpdateOptions{})
			return err
		}, `cannot update resource "subscriptions/status"`},
		{"read another cluster's Descriptions", func() error {
			_, err := cn.AppsV1alpha1().Descriptions(b.Namespace).List(ctx, metav1.ListOptions{})
			return err
		}, `cannot list resource "descriptions"`},
		{"read another cluster's HelmReleases", func() error {
			_, err := cn.AppsV1alpha1().HelmReleases(b.Namespace).List(ctx, metav1.ListOptions{})
			return err
		}, `cannot list resource "helmreleases"`},
		{"read another cluster's request", func() error {
			_, err := cn.ClustersV1beta1().ClusterRegistrationRequests().Get(ctx, clusterv1beta1.NamePrefix+b.ID, metav1.GetOptions{})
			return err
		}, `cannot get resource "clusterregistrationrequests"`},
		{"rewrite another cluster's answer (the CA bundle its agent trusts)", rewriteAnswer(b.ID), `cannot update resource "clusterregistrationrequests/status"`},
		{"rewrite its own answer (the CA bundle it trusts)", rewriteAnswer(a.ID), `cannot update resource "clusterregistrationrequests/status"`},
		{"make registration requests of its own", func() error {
			_, err := cn.ClustersV1beta1().ClusterRegistrationRequests().Create(ctx, newRequest(t, uuid.NewString(), nil), metav1.CreateOptions{})
			return err
		}, `cannot create resource "clusterregistrationrequests"`},
		{"impersonate the parent's admin", func() error {
			cfg := asToken(t, parent, token)
			cfg.Impersonate = rest.ImpersonationConfig{UserName: "admin", Groups: []string{"system:masters"}}
			k, _ := clients(t, cfg)
			_, err := k.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
			return err
		}, `cannot impersonate resource "users"`},
	} {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			expectRefused(t, tc.name, tc.try(), tc.rule)
		})
	}

	// A tunnel opens at sockets/<id>/portforward, or at the bare socket for
	// agents older than the subresource: A may open its own at both, B's at
	// neither.
	mayOpen := func(t *testing.T, id, subresource string) string {
		review := `{"apiVersion":"authorization.k8s.io/v1","kind":"SelfSubjectAccessReview","spec":{"resourceAttributes":` +
			`{"group":"proxies.clusternet.io","resource":"sockets","subresource":"` + subresource + `","name":"` + id + `","verb":"get"}}}`
		out, errOut, err := e2eutil.Kubectl(t, parent, review, "create", "--validate=false", "-f", "-", "-o", "jsonpath={.status.allowed}",
			"--token", token, "--kubeconfig", os.DevNull, "--server", parent.URL, "--certificate-authority", parent.CAFile)
		if err != nil {
			t.Fatalf("SelfSubjectAccessReview: %v %s", err, errOut)
		}
		return out
	}
	for _, subresource := range []string{proxiesv1alpha1.TunnelSubresource, ""} {
		t.Run("allowed: open its own tunnel at sockets/"+subresource, func(t *testing.T) {
			if got := mayOpen(t, a.ID, subresource); got != "true" {
				t.Errorf("cluster A may not open its own socket's %q: allowed=%q", subresource, got)
			}
		})
		t.Run("refused: open another cluster's tunnel at sockets/"+subresource, func(t *testing.T) {
			if got := mayOpen(t, b.ID, subresource); got != "false" {
				t.Errorf("cluster A may open B's socket's %q: allowed=%q", subresource, got)
			}
		})
	}
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

func jwtClaims(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	claims := map[string]any{}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

func roleBinding(clusterRole string) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "escalate"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: clusterRole},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:authenticated"}},
	}
}

func description() *appsv1alpha1.Description {
	return &appsv1alpha1.Description{
		ObjectMeta: metav1.ObjectMeta{Name: "forged"},
		Spec: appsv1alpha1.DescriptionSpec{Deployer: appsv1alpha1.DescriptionGenericDeployer, Raw: []runtime.RawExtension{
			{Raw: []byte(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"security-test"}}`)},
		}},
	}
}
