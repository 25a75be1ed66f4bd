package approver

import (
	"context"
	"crypto/ecdh"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	kubefake "k8s.io/client-go/kubernetes/fake"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	clocktesting "k8s.io/utils/clock/testing"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	clusternetfake "github.com/clusternet/clusternet/pkg/generated/clientset/versioned/fake"
	"github.com/clusternet/clusternet/pkg/generated/informers/externalversions"
	"github.com/clusternet/clusternet/pkg/seal"
)

const (
	id       = "dc91021d-2361-4f6d-a404-7c33b9e01118"
	otherID  = "0b4f8e3c-5a7d-4c1e-9f2a-6d8e1c3b5a79"
	crrName  = "clusternet-" + id
	tokenTTL = 24 * time.Hour
)

var agentKey = func() *ecdh.PrivateKey {
	k, err := seal.GenerateKey()
	if err != nil {
		panic(err)
	}
	return k
}()

// crrBuilder makes requests as an agent would: named after its cluster id,
// with its public key.
func newCRR(mutate ...func(*clusterv1beta1.ClusterRegistrationRequest)) *clusterv1beta1.ClusterRegistrationRequest {
	pub, err := seal.MarshalPublicKey(agentKey.PublicKey())
	if err != nil {
		panic(err)
	}
	crr := &clusterv1beta1.ClusterRegistrationRequest{
		ObjectMeta: metav1.ObjectMeta{Name: crrName},
		Spec: clusterv1beta1.ClusterRegistrationRequestSpec{
			ClusterID: id, ClusterName: "edge-1", ClusterType: clusterv1beta1.EdgeCluster,
			SyncMode: clusterv1beta1.PullSyncMode, ClusterLabels: map[string]string{"env": "edge"},
			PublicKey: pub,
		},
	}
	for _, m := range mutate {
		m(crr)
	}
	return crr
}

type fixture struct {
	kube       *kubefake.Clientset
	clusternet *clusternetfake.Clientset
	c          *Controller
	clock      *clocktesting.FakeClock
	// crrs is the informer's cache of requests.
	crrs   cache.Indexer
	tokens int
}

// newFixture wires an approver to fake clientsets. The fakes do not honour
// generateName nor issue tokens, so reactors play the API server's part.
func newFixture(t *testing.T, opts Options, crr *clusterv1beta1.ClusterRegistrationRequest, existing ...runtime.Object) *fixture {
	t.Helper()
	f := &fixture{
		kube:       kubefake.NewClientset(append(existing, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: rootCAConfigMap, Namespace: "kube-system"}, Data: map[string]string{"ca.crt": "ca"}})...),
		clusternet: clusternetfake.NewClientset(crr),
		clock:      clocktesting.NewFakeClock(time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)),
	}
	n := 0
	generateName := func(action clienttesting.Action) (bool, runtime.Object, error) {
		obj := action.(clienttesting.CreateAction).GetObject().(metav1.Object)
		if obj.GetName() == "" && obj.GetGenerateName() != "" {
			n++
			obj.SetName(fmt.Sprintf("%sx%04d", obj.GetGenerateName(), n))
		}
		return false, nil, nil
	}
	f.kube.PrependReactor("create", "*", generateName)
	f.clusternet.PrependReactor("create", "*", generateName)
	// The API server gives every write a new resourceVersion; the fake
	// gives none.
	rv := 0
	f.clusternet.PrependReactor("*", "clusterregistrationrequests", func(action clienttesting.Action) (bool, runtime.Object, error) {
		if w, ok := action.(interface{ GetObject() runtime.Object }); ok && (action.GetVerb() == "create" || action.GetVerb() == "update") {
			rv++
			w.GetObject().(metav1.Object).SetResourceVersion(strconv.Itoa(rv))
		}
		return false, nil, nil
	})
	f.kube.PrependReactor("create", "serviceaccounts", func(action clienttesting.Action) (bool, runtime.Object, error) {
		if action.GetSubresource() != "token" {
			return false, nil, nil
		}
		req := action.(clienttesting.CreateAction).GetObject().(*authenticationv1.TokenRequest).DeepCopy()
		f.tokens++
		req.Status.Token = fmt.Sprintf("tok-%d", f.tokens)
		req.Status.ExpirationTimestamp = metav1.NewTime(f.clock.Now().Add(time.Duration(*req.Spec.ExpirationSeconds) * time.Second))
		return true, req, nil
	})
	informers := externalversions.NewSharedInformerFactory(f.clusternet, 0)
	crrs := informers.Clusters().V1beta1().ClusterRegistrationRequests()
	c, err := New(f.kube, f.clusternet, crrs, opts)
	if err != nil {
		t.Fatal(err)
	}
	c.clock = f.clock
	f.crrs = crrs.Informer().GetIndexer()
	if err := f.crrs.Add(crr); err != nil {
		t.Fatal(err)
	}
	f.c = c
	return f
}

// sync runs the approver once, with the cache holding what the API has.
func (f *fixture) sync(t *testing.T) time.Duration {
	t.Helper()
	crr := f.request(t)
	if err := f.crrs.Update(crr); err != nil {
		t.Fatal(err)
	}
	requeue, err := f.c.sync(context.Background(), crr.Name)
	if err != nil {
		t.Fatal(err)
	}
	return requeue
}

func (f *fixture) request(t *testing.T) *clusterv1beta1.ClusterRegistrationRequest {
	t.Helper()
	list, err := f.clusternet.ClustersV1beta1().ClusterRegistrationRequests().List(context.Background(), metav1.ListOptions{})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("want 1 request, got %v, %v", list, err)
	}
	return &list.Items[0]
}

var autoOpts = Options{Approval: AutoApproval, TokenTTL: tokenTTL, RegistrationsPerMinute: 600}

func TestApproveCreatesLeastPrivilegeIdentity(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, autoOpts, newCRR())
	if requeue := f.sync(t); requeue != tokenTTL/2 {
		t.Errorf("requeue %s after approval, want half the token's life %s", requeue, tokenTTL/2)
	}
	// Again, as a restarted hub does: everything is found, not duplicated,
	// and the fresh token kept.
	f.c.answered.Clear()
	if requeue := f.sync(t); requeue != tokenTTL/2 {
		t.Errorf("requeue %s on a fresh token, want %s", requeue, tokenTTL/2)
	}
	if f.tokens != 1 {
		t.Errorf("%d tokens issued for one fresh request, want 1", f.tokens)
	}

	nsList, _ := f.kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if len(nsList.Items) != 1 {
		t.Fatalf("want 1 dedicated namespace, got %d", len(nsList.Items))
	}
	ns := nsList.Items[0]
	if diff := cmp.Diff(map[string]string{
		clusterv1beta1.LabelClusterID: id, clusterv1beta1.LabelCreatedBy: "clusternet-hub",
		"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/audit": "restricted", "pod-security.kubernetes.io/warn": "restricted",
	}, ns.Labels); diff != "" {
		t.Errorf("namespace labels (-want +got):\n%s", diff)
	}
	mclsList, _ := f.clusternet.ClustersV1beta1().ManagedClusters(ns.Name).List(ctx, metav1.ListOptions{})
	if len(mclsList.Items) != 1 {
		t.Fatalf("want 1 ManagedCluster, got %d", len(mclsList.Items))
	}
	mcls := mclsList.Items[0]
	if diff := cmp.Diff(map[string]string{
		clusterv1beta1.LabelClusterID: id, clusterv1beta1.LabelClusterName: "edge-1",
		clusterv1beta1.LabelCreatedBy: "clusternet-agent", "env": "edge",
	}, mcls.Labels); diff != "" {
		t.Errorf("ManagedCluster labels (-want +got):\n%s", diff)
	}

	cr, err := f.kube.RbacV1().ClusterRoles().Get(ctx, crrName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]rbacv1.PolicyRule{
		{APIGroups: []string{"clusters.clusternet.io"}, Resources: []string{"clusterregistrationrequests"}, Verbs: []string{"get"}, ResourceNames: []string{crrName}},
		{APIGroups: []string{"proxies.clusternet.io"}, Resources: []string{"sockets", "sockets/portforward"}, Verbs: []string{"get"}, ResourceNames: []string{id}},
	}, cr.Rules); diff != "" {
		t.Errorf("ClusterRole rules (-want +got):\n%s", diff)
	}
	role, err := f.kube.RbacV1().Roles(ns.Name).Get(ctx, ManagedClusterRole, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range role.Rules {
		for _, v := range r.Verbs {
			if v == "*" || v == "create" && r.Resources[0] != "events" || v == "impersonate" || v == "bind" || v == "escalate" {
				t.Errorf("Role grants %q on %v", v, r.Resources)
			}
		}
		for _, res := range r.Resources {
			if res == "*" || res == "pods" || res == "roles" || res == "rolebindings" || res == "namespaces" {
				t.Errorf("Role names resource %q", res)
			}
		}
	}
	if diff := cmp.Diff(AgentNamespaceRules("edge-1"), role.Rules); diff != "" {
		t.Errorf("Role rules (-want +got):\n%s", diff)
	}
	if _, err := f.kube.RbacV1().ClusterRoleBindings().Get(ctx, crrName, metav1.GetOptions{}); err != nil {
		t.Error(err)
	}
	if _, err := f.kube.RbacV1().RoleBindings(ns.Name).Get(ctx, ManagedClusterRole, metav1.GetOptions{}); err != nil {
		t.Error(err)
	}

	got := f.request(t)
	token, err := seal.Open(agentKey, got.Status.SealedToken, []byte(crrName))
	if err != nil || string(token) != "tok-1" {
		t.Errorf("the agent's key opens %q, %v; want tok-1", token, err)
	}
	exp := metav1.NewTime(f.clock.Now().Add(tokenTTL))
	approved := clusterv1beta1.RequestApproved
	want := clusterv1beta1.ClusterRegistrationRequestStatus{
		Result: &approved, SealedToken: got.Status.SealedToken, TokenExpirationTimestamp: &exp,
		CACertificate: []byte("ca"), DedicatedNamespace: ns.Name, ManagedClusterName: "edge-1",
	}
	if diff := cmp.Diff(want, got.Status); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
}

func TestTokenRenewedAtHalfLife(t *testing.T) {
	f := newFixture(t, autoOpts, newCRR())
	f.sync(t)
	f.clock.Step(tokenTTL/2 - time.Minute)
	if requeue := f.sync(t); requeue != time.Minute || f.tokens != 1 {
		t.Fatalf("a minute before half life: requeue %s with %d tokens, want 1m and 1", requeue, f.tokens)
	}
	f.clock.Step(time.Minute)
	f.sync(t)
	got := f.request(t)
	token, err := seal.Open(agentKey, got.Status.SealedToken, []byte(crrName))
	if err != nil || string(token) != "tok-2" {
		t.Errorf("after half life the request holds %q, %v; want the renewed tok-2", token, err)
	}
	if want := f.clock.Now().Add(tokenTTL); !got.Status.TokenExpirationTimestamp.Time.Equal(want) {
		t.Errorf("expiration %s, want %s", got.Status.TokenExpirationTimestamp, want)
	}
}

// Clusters registered by an earlier version got a wildcard Role and a token
// that never expires: both go on the next sync, unless an admin opted the
// Role out of updates.
func TestUpgradeNarrowsRightsAndDropsLegacyToken(t *testing.T) {
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "clusternet-old", Labels: map[string]string{clusterv1beta1.LabelClusterID: id}}}
	wildcard := []rbacv1.PolicyRule{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}}}
	for _, tc := range []struct {
		name       string
		autoUpdate string
		wantRules  []rbacv1.PolicyRule
	}{
		{name: "autoupdate", autoUpdate: "true", wantRules: AgentNamespaceRules("edge-1")},
		{name: "admin opted out", autoUpdate: "false", wantRules: wildcard},
	} {
		t.Run(tc.name, func(t *testing.T) {
			role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: ManagedClusterRole, Namespace: ns.Name,
				Annotations: map[string]string{clusterv1beta1.AnnotationAutoUpdate: tc.autoUpdate}}, Rules: wildcard}
			legacy := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: legacyTokenSecret, Namespace: ns.Name}}
			// The ServiceAccount whose token the Secret is, as the earlier version made it.
			sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: AgentServiceAccount, Namespace: ns.Name}}
			f := newFixture(t, autoOpts, newCRR(), ns.DeepCopy(), role, legacy, sa)
			f.sync(t)
			got, err := f.kube.RbacV1().Roles(ns.Name).Get(ctx, ManagedClusterRole, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.wantRules, got.Rules); diff != "" {
				t.Errorf("Role rules (-want +got):\n%s", diff)
			}
			if _, err := f.kube.CoreV1().Secrets(ns.Name).Get(ctx, legacyTokenSecret, metav1.GetOptions{}); err == nil {
				t.Error("the never-expiring token Secret is still there")
			}
			gotNS, _ := f.kube.CoreV1().Namespaces().Get(ctx, ns.Name, metav1.GetOptions{})
			if gotNS.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
				t.Errorf("existing dedicated namespace labels %v lack Pod Security restricted", gotNS.Labels)
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	ctx := context.Background()
	someonesNS := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}
	otherClusterNS := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "clusternet-abcde", Labels: map[string]string{clusterv1beta1.LabelClusterID: otherID}}}
	for _, tc := range []struct {
		name     string
		mutate   func(*clusterv1beta1.ClusterRegistrationRequest)
		existing []runtime.Object
		taken    *clusterv1beta1.ManagedCluster
		want     string
	}{
		{
			name:   "name does not match the cluster id",
			mutate: func(c *clusterv1beta1.ClusterRegistrationRequest) { c.Name = "clusternet-someone-else" },
			want:   `metadata.name "clusternet-someone-else" does not match spec.clusterId "` + id + `": a request must be named "clusternet-` + id + `"`,
		},
		{
			name:   "no public key",
			mutate: func(c *clusterv1beta1.ClusterRegistrationRequest) { c.Spec.PublicKey = nil },
			want:   "spec.publicKey is empty: this hub hands out credentials only sealed to a key the requesting agent holds; upgrade the agent, which generates one",
		},
		{
			name:   "a public key that is not one",
			mutate: func(c *clusterv1beta1.ClusterRegistrationRequest) { c.Spec.PublicKey = []byte("hello") },
			want:   `spec.publicKey is not a PEM X25519 public key: not a PEM "PUBLIC KEY" block`,
		},
		{
			name:   "kube-system",
			mutate: func(c *clusterv1beta1.ClusterRegistrationRequest) { c.Spec.ClusterNamespace = "kube-system" },
			want:   `spec.clusterNamespace "kube-system" is reserved (default, kube-*, clusternet-system, clusternet-reserved): leave it empty to get a generated clusternet-xxxxx namespace`,
		},
		{
			name:   "clusternet-reserved, which holds every template",
			mutate: func(c *clusterv1beta1.ClusterRegistrationRequest) { c.Spec.ClusterNamespace = "clusternet-reserved" },
			want:   `spec.clusterNamespace "clusternet-reserved" is reserved (default, kube-*, clusternet-system, clusternet-reserved): leave it empty to get a generated clusternet-xxxxx namespace`,
		},
		{
			name:     "a namespace a team uses",
			mutate:   func(c *clusterv1beta1.ClusterRegistrationRequest) { c.Spec.ClusterNamespace = "team-a" },
			existing: []runtime.Object{someonesNS},
			want:     `spec.clusterNamespace "team-a" already exists in the parent and is not this cluster's: ask for another name, or leave it empty to get a generated one`,
		},
		{
			name:     "another cluster's dedicated namespace",
			mutate:   func(c *clusterv1beta1.ClusterRegistrationRequest) { c.Spec.ClusterNamespace = "clusternet-abcde" },
			existing: []runtime.Object{otherClusterNS},
			want:     `spec.clusterNamespace "clusternet-abcde" already exists in the parent and is not this cluster's: ask for another name, or leave it empty to get a generated one`,
		},
		{
			name:   "another cluster's name",
			mutate: func(c *clusterv1beta1.ClusterRegistrationRequest) { c.Spec.ClusterName = "prod-1" },
			taken: &clusterv1beta1.ManagedCluster{
				ObjectMeta: metav1.ObjectMeta{Name: "prod-1", Namespace: "clusternet-abcde", Labels: map[string]string{clusterv1beta1.LabelClusterName: "prod-1"}},
				Spec:       clusterv1beta1.ManagedClusterSpec{ClusterID: otherID},
			},
			want: `spec.clusterName "prod-1" is taken by another cluster (ManagedCluster clusternet-abcde/prod-1): ask for another name with --cluster-name, or leave it empty to get a generated one`,
		},
		{
			name: "a label that claims another identity",
			mutate: func(c *clusterv1beta1.ClusterRegistrationRequest) {
				c.Spec.ClusterLabels[clusterv1beta1.LabelClusterID] = otherID
			},
			want: `spec.clusterLabels["clusters.clusternet.io/cluster-id"]: labels under "clusters.clusternet.io/" are reserved; an admin sets them on the ManagedCluster`,
		},
		{
			name:   "a label value that is not one",
			mutate: func(c *clusterv1beta1.ClusterRegistrationRequest) { c.Spec.ClusterLabels["env"] = "edge prod" },
			want:   `spec.clusterLabels["env"] = "edge prod": not a valid label value: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			crr := newCRR(tc.mutate)
			f := newFixture(t, autoOpts, crr, tc.existing...)
			if tc.taken != nil {
				if _, err := f.clusternet.ClustersV1beta1().ManagedClusters(tc.taken.Namespace).Create(ctx, tc.taken, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			nsBefore, _ := f.kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
			f.sync(t)
			got := f.request(t)
			if got.Status.Result == nil || *got.Status.Result != clusterv1beta1.RequestDenied {
				t.Fatalf("result = %v, want Denied", got.Status.Result)
			}
			if got.Status.ErrorMessage != tc.want {
				t.Errorf("errorMessage:\n got %s\nwant %s", got.Status.ErrorMessage, tc.want)
			}
			if nsAfter, _ := f.kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); len(nsAfter.Items) != len(nsBefore.Items) {
				t.Errorf("a denied request got a namespace: %d before, %d after", len(nsBefore.Items), len(nsAfter.Items))
			}
			if f.tokens != 0 || len(got.Status.SealedToken) != 0 {
				t.Errorf("a denied request got a token")
			}
		})
	}
}

func TestManualApprovalWaitsForAnAdmin(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{Approval: ManualApproval, TokenTTL: tokenTTL, RegistrationsPerMinute: 600}, newCRR())
	f.sync(t)
	got := f.request(t)
	want := "waiting for an admin: the hub runs with --registration-approval=manual; approve with 'kubectl clusternet approve " + crrName +
		"' or deny with 'kubectl clusternet deny " + crrName + "'"
	if got.Status.Result == nil || *got.Status.Result != clusterv1beta1.RequestPending || got.Status.ErrorMessage != want {
		t.Fatalf("status %+v, want Pending with %q", got.Status, want)
	}
	if nsList, _ := f.kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); len(nsList.Items) != 0 || f.tokens != 0 {
		t.Fatalf("an unapproved request got %d namespaces and %d tokens", len(nsList.Items), f.tokens)
	}
	// What `kubectl clusternet approve` writes.
	got.Status = clusterv1beta1.ClusterRegistrationRequestStatus{Result: ptr(clusterv1beta1.RequestApproved)}
	if _, err := f.clusternet.ClustersV1beta1().ClusterRegistrationRequests().UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.sync(t)
	got = f.request(t)
	if token, err := seal.Open(agentKey, got.Status.SealedToken, []byte(crrName)); err != nil || string(token) != "tok-1" || got.Status.ErrorMessage != "" {
		t.Errorf("after approval: token %q, %v, message %q", token, err, got.Status.ErrorMessage)
	}
}

// A deleted request's key comes through the loop too (Watch queues
// deletes): nothing is left to answer, and nothing is touched.
func TestDeletedRequest(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, autoOpts, newCRR())
	if err := f.crrs.Delete(newCRR()); err != nil {
		t.Fatal(err)
	}
	f.kube.ClearActions()
	requeue, err := f.c.sync(ctx, crrName)
	if requeue != 0 || err != nil {
		t.Errorf("sync of a deleted request: requeue %s, err %v; want 0, nil", requeue, err)
	}
	if actions := append(f.kube.Actions(), f.clusternet.Actions()...); len(actions) != 0 {
		t.Errorf("sync of a deleted request called the API server: %v", actions)
	}
}

// Whoever holds the bootstrap token may ask for any number of clusters:
// admissions are paced, and the rest wait their turn without an error.
func TestRegistrationsArePaced(t *testing.T) {
	f := newFixture(t, Options{Approval: AutoApproval, TokenTTL: tokenTTL, RegistrationsPerMinute: 6}, newCRR())
	// The burst (a tenth of a minute's worth, at least one) is used up.
	if wait := f.c.admissionWait(); wait != 0 {
		t.Fatalf("first admission waits %s", wait)
	}
	if requeue := f.sync(t); requeue != 10*time.Second || f.tokens != 0 {
		t.Fatalf("over the limit: requeue %s with %d tokens; want 10s (6 a minute) and none", requeue, f.tokens)
	}
	f.clock.Step(10 * time.Second)
	if requeue := f.sync(t); requeue != tokenTTL/2 || f.tokens != 1 {
		t.Fatalf("its turn: requeue %s with %d tokens; want %s and 1", requeue, f.tokens, tokenTTL/2)
	}
	// Renewing an admitted cluster's token is not a new admission.
	f.c.admissionWait()
	f.clock.Step(tokenTTL / 2)
	f.sync(t)
	if f.tokens != 2 {
		t.Errorf("renewal held back by the admission limit: %d tokens, want 2", f.tokens)
	}
}

func TestAnswerOf(t *testing.T) {
	approved, denied, pending := clusterv1beta1.RequestApproved, clusterv1beta1.RequestDenied, clusterv1beta1.RequestPending
	for _, tc := range []struct {
		name           string
		before, result *clusterv1beta1.ApprovedResult
		want           string
	}{
		{name: "first approval", result: &approved, want: "approved"},
		{name: "approval after waiting for an admin", before: &pending, result: &approved, want: "approved"},
		{name: "token renewed", before: &approved, result: &approved, want: "renewed"},
		{name: "denied", result: &denied, want: "denied"},
		{name: "waits for an admin", result: &pending, want: "pending"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := answerOf(tc.before, tc.result); got != tc.want {
				t.Errorf("answerOf = %q, want %q", got, tc.want)
			}
		})
	}
}

// barrier lets its callers through once n of them wait at once; a caller
// that waited timeout for the others goes on, and the barrier records it.
type barrier struct {
	n       int
	mu      sync.Mutex
	waiting int
	open    chan struct{}
	failed  atomic.Bool
}

func newBarrier(n int) *barrier { return &barrier{n: n, open: make(chan struct{})} }

func (b *barrier) wait() {
	b.mu.Lock()
	b.waiting++
	if b.waiting == b.n {
		close(b.open)
	}
	b.mu.Unlock()
	select {
	case <-b.open:
	case <-time.After(5 * time.Second):
		b.failed.Store(true)
	}
}

// gatedKube holds some of the approver's requests to the parent at a
// barrier (the fake clientset runs its reactors one at a time, so they
// cannot wait for each other).
type gatedKube struct {
	kubernetes.Interface
	configMapGet, namespaceList, namespaceCreate func()
}

func (g gatedKube) CoreV1() corev1client.CoreV1Interface { return gatedCore{g.Interface.CoreV1(), g} }

type gatedCore struct {
	corev1client.CoreV1Interface
	g gatedKube
}

func (c gatedCore) ConfigMaps(ns string) corev1client.ConfigMapInterface {
	return gatedConfigMaps{c.CoreV1Interface.ConfigMaps(ns), c.g}
}

func (c gatedCore) Namespaces() corev1client.NamespaceInterface {
	return gatedNamespaces{c.CoreV1Interface.Namespaces(), c.g}
}

type gatedConfigMaps struct {
	corev1client.ConfigMapInterface
	g gatedKube
}

func (c gatedConfigMaps) Get(ctx context.Context, name string, opts metav1.GetOptions) (*corev1.ConfigMap, error) {
	pass(c.g.configMapGet)
	return c.ConfigMapInterface.Get(ctx, name, opts)
}

type gatedNamespaces struct {
	corev1client.NamespaceInterface
	g gatedKube
}

func (n gatedNamespaces) List(ctx context.Context, opts metav1.ListOptions) (*corev1.NamespaceList, error) {
	pass(n.g.namespaceList)
	return n.NamespaceInterface.List(ctx, opts)
}

func (n gatedNamespaces) Create(ctx context.Context, ns *corev1.Namespace, opts metav1.CreateOptions) (*corev1.Namespace, error) {
	pass(n.g.namespaceCreate)
	return n.NamespaceInterface.Create(ctx, ns, opts)
}

func pass(gate func()) {
	if gate != nil {
		gate()
	}
}

// One cluster's answer does not wait for the parent's CA bundle to be read
// before it makes the cluster's objects: the two are read at once.
func TestApprovalReadsTheCAMeanwhile(t *testing.T) {
	f := newFixture(t, autoOpts, newCRR())
	b := newBarrier(2)
	f.c.kube = gatedKube{Interface: f.kube, configMapGet: b.wait, namespaceList: b.wait}
	f.sync(t)
	if b.failed.Load() {
		t.Error("the dedicated namespace was looked up only after the CA bundle was read (or before it was asked for): want both at once")
	}
	if got := f.request(t); len(got.Status.SealedToken) == 0 || string(got.Status.CACertificate) != "ca" {
		t.Errorf("status %+v: want a token and the CA bundle", got.Status)
	}
}

// The approver answers Options.Workers requests at once, more than the
// hub's --workers: a registration spends its time waiting on the parent.
func TestApproverAnswersManyAtOnce(t *testing.T) {
	const clusters = 6
	ids := []string{id}
	for i := 1; i < clusters; i++ {
		ids = append(ids, fmt.Sprintf("%s%02d", otherID[:len(otherID)-2], i))
	}
	f := newFixture(t, autoOpts, newCRR())
	for _, cid := range ids[1:] {
		crr := newCRR(func(r *clusterv1beta1.ClusterRegistrationRequest) {
			r.Name, r.Spec.ClusterID, r.Spec.ClusterName = clusterv1beta1.NamePrefix+cid, types.UID(cid), "edge-"+cid[len(cid)-2:]
		})
		if _, err := f.clusternet.ClustersV1beta1().ClusterRegistrationRequests().Create(context.Background(), crr, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	b := newBarrier(clusters)
	opts := autoOpts
	opts.Workers = clusters
	ctx := runApprover(t, f, gatedKube{Interface: f.kube, namespaceCreate: b.wait}, opts)
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		list, err := f.clusternet.ClustersV1beta1().ClusterRegistrationRequests().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		answered := 0
		for _, r := range list.Items {
			if len(r.Status.SealedToken) > 0 {
				answered++
			}
		}
		return answered == clusters, nil
	})
	if err != nil {
		t.Fatalf("waiting for %d answers: %v", clusters, err)
	}
	if b.failed.Load() {
		t.Errorf("fewer than %d requests were answered at once with Workers %d and --workers 2", clusters, clusters)
	}
}

// The informer brings the approver's own answer back as an update: it is
// not answered again, request by request, until the request changes.
func TestOwnAnswerIsNotRedone(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, autoOpts, newCRR())
	f.sync(t)
	f.kube.ClearActions()
	f.clusternet.ClearActions()
	if requeue := f.sync(t); requeue != tokenTTL/2 {
		t.Errorf("requeue %s on its own answer, want %s", requeue, tokenTTL/2)
	}
	if actions := append(f.kube.Actions(), f.clusternet.Actions()[1:]...); len(actions) != 0 { // [0] is the fixture's read
		t.Errorf("the approver's own answer was made again: %v", actions)
	}

	// Someone deletes the agent's Role and touches the request: it is
	// checked in full again.
	ns := f.request(t).Status.DedicatedNamespace
	if err := f.kube.RbacV1().Roles(ns).Delete(ctx, ManagedClusterRole, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	crr := f.request(t)
	crr.Labels = map[string]string{"touched": "yes"}
	if _, err := f.clusternet.ClustersV1beta1().ClusterRegistrationRequests().Update(ctx, crr, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.sync(t)
	if _, err := f.kube.RbacV1().Roles(ns).Get(ctx, ManagedClusterRole, metav1.GetOptions{}); err != nil {
		t.Errorf("a changed request was not checked again: %v", err)
	}
	if f.tokens != 1 {
		t.Errorf("%d tokens issued, want 1: the token is still fresh", f.tokens)
	}
}

// Two clusters asking for one name at once: one gets it, the other is
// refused, though both are answered by workers at the same time and both
// would find the name free if they looked before either took it.
func TestOneNameOneClusterUnderConcurrency(t *testing.T) {
	f := newFixture(t, autoOpts, newCRR())
	rival := newCRR(func(r *clusterv1beta1.ClusterRegistrationRequest) {
		r.Name, r.Spec.ClusterID = clusterv1beta1.NamePrefix+otherID, types.UID(otherID)
	})
	if _, err := f.clusternet.ClustersV1beta1().ClusterRegistrationRequests().Create(context.Background(), rival, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Without the name's lock both requests pass the name check and meet
	// here, before either has made its ManagedCluster.
	b := newBarrier(2)
	ctx := runApprover(t, f, gatedKube{Interface: f.kube, namespaceCreate: b.wait}, autoOpts)
	var answers []clusterv1beta1.ClusterRegistrationRequestStatus
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		list, err := f.clusternet.ClustersV1beta1().ClusterRegistrationRequests().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		answers = answers[:0]
		for _, r := range list.Items {
			if r.Status.Result != nil && (*r.Status.Result == clusterv1beta1.RequestDenied || len(r.Status.SealedToken) > 0) {
				answers = append(answers, r.Status)
			}
		}
		return len(answers) == 2, nil
	})
	if err != nil {
		t.Fatalf("waiting for both answers: %v", err)
	}
	named, err := f.clusternet.ClustersV1beta1().ManagedClusters(metav1.NamespaceAll).List(ctx, metav1.ListOptions{
		LabelSelector: clusterv1beta1.LabelClusterName + "=edge-1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(named.Items) != 1 {
		t.Errorf("%d ManagedClusters named edge-1, want 1", len(named.Items))
	}
	denied := 0
	for _, a := range answers {
		if *a.Result == clusterv1beta1.RequestDenied {
			denied++
			if !strings.Contains(a.ErrorMessage, `spec.clusterName "edge-1" is taken by another cluster`) {
				t.Errorf("refusal %q does not say the name is taken", a.ErrorMessage)
			}
		}
	}
	if denied != 1 {
		t.Errorf("%d of the 2 requests denied, want 1: %+v", denied, answers)
	}
}

// runApprover runs an approver on f's requests with kube and opts, and
// --workers 2 (the hub's default), until the test ends; its context ends
// with it.
func runApprover(t *testing.T, f *fixture, kube kubernetes.Interface, opts Options) context.Context {
	t.Helper()
	informers := externalversions.NewSharedInformerFactory(f.clusternet, 0)
	c, err := New(kube, f.clusternet, informers.Clusters().V1beta1().ClusterRegistrationRequests(), opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	informers.Start(ctx.Done())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx, 2)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return ctx
}

// What a new cluster costs the parent in the approver's own requests: no
// DELETE of a legacy token Secret a new ServiceAccount cannot have, and the
// CA bundle read once a minute, not once per cluster (a thousand clusters
// register within a minute or two).
func TestNewClustersCostNoNeedlessRequest(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, autoOpts, newCRR())
	caWant := "ca"
	register := func(cid string) {
		t.Helper()
		crr := newCRR(func(r *clusterv1beta1.ClusterRegistrationRequest) {
			r.Name, r.Spec.ClusterID, r.Spec.ClusterName = clusterv1beta1.NamePrefix+cid, types.UID(cid), "edge-"+cid[len(cid)-2:]
		})
		if cid == id {
			crr = f.request(t)
		} else if _, err := f.clusternet.ClustersV1beta1().ClusterRegistrationRequests().Create(ctx, crr, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := f.crrs.Add(crr); err != nil {
			t.Fatal(err)
		}
		if _, err := f.c.sync(ctx, crr.Name); err != nil {
			t.Fatal(err)
		}
		got, err := f.clusternet.ClustersV1beta1().ClusterRegistrationRequests().Get(ctx, crr.Name, metav1.GetOptions{})
		if err != nil || len(got.Status.SealedToken) == 0 || string(got.Status.CACertificate) != caWant {
			t.Fatalf("request %s after its sync: %+v, %v; want a token and the CA bundle", crr.Name, got.Status, err)
		}
	}
	count := func(verb, resource string) int {
		n := 0
		for _, a := range f.kube.Actions() {
			if a.GetVerb() == verb && a.GetResource().Resource == resource {
				n++
			}
		}
		return n
	}
	other := func(i int) string { return fmt.Sprintf("%s%02d", otherID[:len(otherID)-2], i) }

	register(id)
	register(other(1))
	register(other(2))
	if n := count("delete", "secrets"); n != 0 {
		t.Errorf("%d DELETEs of secrets for three new clusters, want none", n)
	}
	if n := count("get", "configmaps"); n != 1 {
		t.Errorf("%d reads of the CA bundle for three clusters within a minute, want 1", n)
	}
	// The parent's CA rotates: the bundle changes, and answers carry the
	// new one once the one read is a minute old.
	cm, err := f.kube.CoreV1().ConfigMaps("kube-system").Get(ctx, rootCAConfigMap, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["ca.crt"] = "ca\nnew-ca"
	if _, err := f.kube.CoreV1().ConfigMaps("kube-system").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.kube.ClearActions()
	f.clock.Step(caFresh + time.Second)
	caWant = "ca\nnew-ca"
	register(other(3))
	if n := count("get", "configmaps"); n != 1 {
		t.Errorf("%d reads of the CA bundle once it was a minute old, want 1", n)
	}
	// Answering a registered cluster again (its token renewed half a TTL
	// later): its ServiceAccount exists, and this process knows its
	// namespace holds no legacy Secret.
	f.kube.ClearActions()
	f.clock.Step(tokenTTL/2 + time.Minute)
	if _, err := f.c.sync(ctx, clusterv1beta1.NamePrefix+other(1)); err != nil {
		t.Fatal(err)
	}
	if n := count("create", "serviceaccounts"); n == 0 {
		t.Fatal("the renewal made no token request: the test renews nothing")
	}
	if n := count("delete", "secrets"); n != 0 {
		t.Errorf("%d DELETEs of secrets when renewing a token, want none", n)
	}
}
