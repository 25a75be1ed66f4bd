package clusterapi

import (
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/bootstraptoken"
	"github.com/clusternet/clusternet/pkg/registration"
)

const (
	childServer = "https://workload-1.example.com:6443"
	childID     = "11111111-2222-3333-4444-555555555555"
	clusterUID  = "cluster-uid-prod"
	prodKey     = testNamespace + "/prod"
)

func TestInstallIntoAProvisionedCluster(t *testing.T) {
	h := newHarness(t, []runtime.Object{provisioned("prod", clusterUID), kubeconfigSecret("prod", childServer)}, nil)
	child := h.child(childServer, childID)

	again := h.sync(prodKey)

	applies := child.applied()
	if len(applies) != 1 {
		t.Fatalf("applies = %d, want 1", len(applies))
	}
	tokens := h.tokenSecrets()
	if len(tokens) != 1 {
		t.Fatalf("bootstrap tokens in the parent = %d, want 1", len(tokens))
	}
	tok := tokens[0]
	wantLabels := map[string]string{
		clusterv1beta1.LabelCreatedBy: "clusternet-hub", clusterv1beta1.LabelClusterID: childID,
		LabelManagement: managementUID, LabelNamespace: testNamespace, LabelName: "prod", LabelUID: clusterUID,
	}
	if diff := cmp.Diff(wantLabels, tok.Labels); diff != "" {
		t.Errorf("token labels (-want +got):\n%s", diff)
	}
	if got := string(tok.Data[bootstraptoken.KeyExpiration]); got != h.now.Add(TokenTTL).Format(time.RFC3339) {
		t.Errorf("token expiration = %s, want %s", got, h.now.Add(TokenTTL).Format(time.RFC3339))
	}
	// The registration Secret carries the parent's address, this token and CA.
	reg := objectOf(applies[0], "Secret")
	if reg == nil {
		t.Fatal("no registration Secret applied")
	}
	stringData, _, _ := unstructuredStringMap(reg.Object, "stringData")
	wantToken := string(tok.Data[bootstraptoken.KeyTokenID]) + "." + string(tok.Data[bootstraptoken.KeyTokenSecret])
	if stringData["parentURL"] != testParentURL || stringData["regToken"] != wantToken || strings.TrimSpace(stringData["parentCA"]) != strings.TrimSpace(string(h.parentCA)) {
		t.Errorf("registration Secret stringData = %v, want parentURL %s, regToken %s and the parent's CA", stringData, testParentURL, wantToken)
	}
	args := containerArgs(t, objectOf(applies[0], "Deployment"))
	if !slices.Contains(args, "--cluster-name=prod") {
		t.Errorf("agent args %q lack --cluster-name=prod", args)
	}
	if want := TokenTTL / 2; again != want {
		t.Errorf("looks again after %s, want %s (the token's renewal, should it not have registered)", again, want)
	}
	if diff := cmp.Diff([]string{"Normal " + ReasonAgentInstalled}, reasons(h.takeEvents())); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}

	t.Run("a second sync installs nothing again", func(t *testing.T) {
		h.sync(prodKey)
		if n := len(child.applied()); n != 1 {
			t.Errorf("applies = %d, want still 1", n)
		}
		if n := len(h.tokenSecrets()); n != 1 {
			t.Errorf("bootstrap tokens = %d, want still 1", n)
		}
		if ev := h.takeEvents(); len(ev) != 0 {
			t.Errorf("events = %q, want none", ev)
		}
	})

	t.Run("an expiring token is replaced and installed again", func(t *testing.T) {
		h.now = h.now.Add(TokenTTL/2 + time.Second)
		h.sync(prodKey)
		tokens := h.tokenSecrets()
		if len(tokens) != 1 || tokens[0].Name == tok.Name {
			t.Fatalf("tokens = %v, want one, not %s", names(tokens), tok.Name)
		}
		if n := len(child.applied()); n != 2 {
			t.Errorf("applies = %d, want 2", n)
		}
	})
}

func TestNothingBeforeTheControlPlaneIsInitialized(t *testing.T) {
	tests := []struct {
		name    string
		cluster clusterFixture
	}{
		{name: "no conditions yet", cluster: clusterFixture{name: "prod", uid: clusterUID, phase: "Provisioning"}},
		// The phase is a summary for people (cluster-api says software must
		// not decide by it); the condition decides.
		{name: "phase Provisioned without ControlPlaneInitialized", cluster: clusterFixture{name: "prod", uid: clusterUID, phase: "Provisioned"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, []runtime.Object{tc.cluster.build(), kubeconfigSecret("prod", childServer)}, nil)
			child := h.child(childServer, childID)
			if again := h.sync(prodKey); again != 0 {
				t.Errorf("looks again after %s, want only when the Cluster changes", again)
			}
			if len(child.applied()) != 0 || len(h.tokenSecrets()) != 0 {
				t.Errorf("applied %d times and made %d tokens, want nothing", len(child.applied()), len(h.tokenSecrets()))
			}
		})
	}
}

func TestKubeconfigProblemsAreEventsOnTheCluster(t *testing.T) {
	refusedSecret := kubeconfigSecret("prod", childServer)
	refusedSecret.Data[kubeconfigKey] = kubeconfigFor(childServer, func(_ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) {
		u.Exec = &clientcmdapi.ExecConfig{Command: "/bin/steal-the-hub-token", APIVersion: "client.authentication.k8s.io/v1"}
	})
	tests := []struct {
		name      string
		secret    *corev1.Secret
		wantEvent string
	}{
		{name: "no Secret yet", wantEvent: "Normal " + ReasonWaitingForKubeconfig + " The control plane is initialized; waiting for kubeconfig Secret prod-kubeconfig"},
		{name: "a credential plugin", secret: refusedSecret,
			wantEvent: "Warning " + ReasonKubeconfigRefused + ` Kubeconfig Secret prod-kubeconfig: users["workload-admin"].exec: a credential plugin would run a program inside the hub`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mgmt := []runtime.Object{provisioned("prod", clusterUID)}
			if tc.secret != nil {
				mgmt = append(mgmt, tc.secret)
			}
			h := newHarness(t, mgmt, nil)
			child := h.child(childServer, childID)
			if again := h.sync(prodKey); again != 0 {
				t.Errorf("looks again after %s, want only when the Secret changes", again)
			}
			events := h.takeEvents()
			if len(events) != 1 || !strings.HasPrefix(events[0], tc.wantEvent) {
				t.Errorf("events = %q, want one starting %q", events, tc.wantEvent)
			}
			if len(child.applied()) != 0 || len(h.tokenSecrets()) != 0 {
				t.Error("something was installed")
			}
		})
	}
}

func TestAnUnreachableClusterIsRetriedWithBackOff(t *testing.T) {
	h := newHarness(t, []runtime.Object{provisioned("prod", clusterUID), kubeconfigSecret("prod", childServer)}, nil)
	child := h.child(childServer, childID)
	child.idErr = errors.New("dial tcp 10.0.0.1:6443: connect: connection refused")
	var delays []time.Duration
	for range 5 {
		delays = append(delays, h.sync(prodKey))
	}
	// Doubling from --RetryBase to its limit: never a hot loop.
	want := []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second, 40 * time.Second}
	if diff := cmp.Diff(want, delays); diff != "" {
		t.Errorf("retry delays (-want +got):\n%s", diff)
	}
	events := h.takeEvents()
	if len(events) != 5 || !strings.HasPrefix(events[0], "Warning "+ReasonInstallFailed+" reaching the cluster with kubeconfig Secret prod-kubeconfig: dial tcp") {
		t.Errorf("events = %q, want 5 Warnings %s", events, ReasonInstallFailed)
	}
	if len(h.tokenSecrets()) != 0 {
		t.Error("a token was made for a cluster that could not be reached")
	}

	t.Run("success resets the back-off", func(t *testing.T) {
		child.idErr = nil
		h.sync(prodKey)
		child.idErr = errors.New("connection refused")
		if again := h.sync(prodKey); again != testRetryBase {
			t.Errorf("after a success the next retry is in %s, want %s", again, testRetryBase)
		}
	})

	t.Run("a forbidden apply says what the kubeconfig's user needs", func(t *testing.T) {
		child.idErr = nil
		child.applyErr = apierrors.NewForbidden(schema.GroupResource{Resource: "clusterroles"}, "clusternet-agent", errors.New("no RBAC"))
		h.ctl.forget(prodKey)
		h.takeEvents()
		h.sync(prodKey)
		events := h.takeEvents()
		if len(events) != 1 || !strings.Contains(events[0], "the kubeconfig's user needs cluster-admin rights in the cluster") {
			t.Errorf("events = %q, want the fix named", events)
		}
	})
}

// A failed deletion of the bootstrap token is retried (the next round does
// not take the bound ManagedCluster for the end of it); the registration
// was announced by the round that bound the ManagedCluster, once.
func TestRegisteredIsSaidOnceWhenTheTokenStaysAWhile(t *testing.T) {
	h := newHarness(t, []runtime.Object{provisioned("prod", clusterUID), kubeconfigSecret("prod", childServer)}, nil)
	h.child(childServer, childID)
	h.sync(prodKey)
	h.takeEvents()
	var refused atomic.Bool
	h.parentKube.PrependReactor("delete", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		if refused.CompareAndSwap(false, true) {
			return true, nil, apierrors.NewServiceUnavailable("the parent is busy")
		}
		return false, nil, nil
	})
	mc := registeredCluster(childID, nil)
	if _, err := h.clusternet.ClustersV1beta1().ManagedClusters(mc.Namespace).Create(h.ctx, mc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.eventually("the ManagedCluster in the cache", func() bool { return h.ctl.registered(childID) != nil })
	h.sync(prodKey)
	if diff := cmp.Diff([]string{"Normal " + ReasonRegistered, "Warning " + ReasonInstallFailed}, reasons(h.takeEvents())); diff != "" {
		t.Errorf("events of the round whose token deletion failed (-want +got):\n%s", diff)
	}
	if n := len(h.tokenSecrets()); n != 1 {
		t.Fatalf("bootstrap tokens = %d, want the one whose deletion failed", n)
	}
	h.eventually("the labels in the cache", func() bool { return h.ctl.registered(childID).Labels[LabelUID] == clusterUID })
	h.sync(prodKey)
	if n := len(h.tokenSecrets()); n != 0 {
		t.Errorf("bootstrap tokens = %d, want 0 after the retry", n)
	}
	if events := h.takeEvents(); len(events) != 0 {
		t.Errorf("events of the retry = %q, want none (Registered was said)", events)
	}
}

func TestARegisteredClusterIsBoundAndItsTokenDeleted(t *testing.T) {
	h := newHarness(t, []runtime.Object{provisioned("prod", clusterUID), kubeconfigSecret("prod", childServer)}, nil)
	child := h.child(childServer, childID)
	h.sync(prodKey)
	h.takeEvents()
	// The agent registers: the approver makes its ManagedCluster.
	mc := registeredCluster(childID, nil)
	if _, err := h.clusternet.ClustersV1beta1().ManagedClusters(mc.Namespace).Create(h.ctx, mc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.eventually("the ManagedCluster in the cache", func() bool { return h.ctl.registered(childID) != nil })
	if got := h.ctl.keysOfManagedCluster(mc); !slices.Contains(got, prodKey) {
		t.Errorf("a new ManagedCluster of an installed cluster queues %q, want %s", got, prodKey)
	}

	h.sync(prodKey)

	if n := len(child.applied()); n != 1 {
		t.Errorf("applies = %d, want still 1: registering changes nothing in the cluster", n)
	}
	got, err := h.clusternet.ClustersV1beta1().ManagedClusters(mc.Namespace).Get(h.ctx, mc.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{LabelManagement: managementUID, LabelNamespace: testNamespace, LabelName: "prod", LabelUID: clusterUID} {
		if got.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, got.Labels[k], v)
		}
	}
	digest := got.Annotations[AnnotationApplied]
	if digest == "" {
		t.Error("no applied digest recorded on the ManagedCluster")
	}
	if n := len(h.tokenSecrets()); n != 0 {
		t.Errorf("bootstrap tokens = %d, want 0 once registered", n)
	}
	if diff := cmp.Diff([]string{"Normal " + ReasonRegistered}, reasons(h.takeEvents())); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}

	t.Run("a new leader applies nothing again, nor contacts the cluster", func(t *testing.T) {
		h.eventually("the labels in the cache", func() bool { return h.ctl.registered(childID).Annotations[AnnotationApplied] == digest })
		h.ctl.forget(prodKey)
		child.idErr = errors.New("contacted the cluster")
		defer func() { child.idErr = nil }()
		h.sync(prodKey)
		if n := len(child.applied()); n != 1 {
			t.Errorf("applies = %d, want still 1", n)
		}
		if ev := h.takeEvents(); len(ev) != 0 {
			t.Errorf("events = %q, want none", ev)
		}
	})

	t.Run("a rotated kubeconfig applies again, without a registration Secret", func(t *testing.T) {
		rotated := kubeconfigSecret("prod", childServer)
		rotated.ResourceVersion = "2"
		if _, err := h.mgmtKube.CoreV1().Secrets(testNamespace).Update(h.ctx, rotated, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		h.sync(prodKey)
		applies := child.applied()
		if len(applies) != 2 {
			t.Fatalf("applies = %d, want 2", len(applies))
		}
		if s := objectOf(applies[1], "Secret"); s != nil {
			t.Errorf("applied registration Secret %s again: the registered agent keeps its own", s.GetName())
		}
		if n := len(h.tokenSecrets()); n != 0 {
			t.Errorf("bootstrap tokens = %d, want none for a registered cluster", n)
		}
	})
}

func TestDeletedClusterIsDeregistered(t *testing.T) {
	bound := map[string]string{LabelManagement: managementUID, LabelNamespace: testNamespace, LabelName: "prod", LabelUID: clusterUID}
	mc := registeredCluster(childID, bound)
	otherID := "99999999-2222-3333-4444-555555555555"
	// A cluster of another management cluster, and one of a namespace the
	// hub does not discover, stay: neither was seen deleted.
	otherManagement := registeredCluster(otherID, map[string]string{LabelManagement: "another", LabelNamespace: testNamespace, LabelUID: "x"})
	parent := []runtime.Object{mc, otherManagement,
		// What the hub's approver made carries its created-by label, the
		// only thing deregistration deletes (pkg/registration).
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: mc.Namespace, Labels: map[string]string{clusterv1beta1.LabelClusterID: childID, clusterv1beta1.LabelCreatedBy: registration.CreatedByHub}}},
		&clusterv1beta1.ClusterRegistrationRequest{ObjectMeta: metav1.ObjectMeta{Name: clusterv1beta1.NamePrefix + childID}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: clusterv1beta1.NamePrefix + childID, Labels: map[string]string{clusterv1beta1.LabelCreatedBy: registration.CreatedByHub}}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: clusterv1beta1.NamePrefix + childID, Labels: map[string]string{clusterv1beta1.LabelCreatedBy: registration.CreatedByHub}}},
		&clusterv1beta1.ClusterRegistrationRequest{ObjectMeta: metav1.ObjectMeta{Name: clusterv1beta1.NamePrefix + otherID}},
	}
	tests := []struct {
		name string
		mgmt []runtime.Object
		key  string
	}{
		{name: "gone from the management cluster", key: prodKey},
		{name: "being deleted (cluster-api's finalizer holds it)", key: prodKey,
			mgmt: []runtime.Object{clusterFixture{name: "prod", uid: clusterUID, initialized: true, deleting: true}.build()}},
		{name: "made again under the same name", key: prodKey,
			mgmt: []runtime.Object{provisioned("prod", "a-new-uid")}},
		{name: "found by the namespace sweep a hub restart queues", key: testNamespace + "/"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.mgmt, parent)
			if tc.key == testNamespace+"/" {
				if got := h.ctl.keysOfManagedCluster(registeredCluster(childID, map[string]string{LabelManagement: managementUID, LabelNamespace: testNamespace})); !slices.Contains(got, tc.key) {
					t.Fatalf("a bound ManagedCluster without a name label queues %q, want %q", got, tc.key)
				}
			}
			h.sync(tc.key)
			c := h.clusternet.ClustersV1beta1()
			if _, err := c.ClusterRegistrationRequests().Get(h.ctx, clusterv1beta1.NamePrefix+childID, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("ClusterRegistrationRequest: %v, want NotFound", err)
			}
			if _, err := h.parentKube.CoreV1().Namespaces().Get(h.ctx, mc.Namespace, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("dedicated namespace: %v, want NotFound", err)
			}
			if _, err := h.parentKube.RbacV1().ClusterRoles().Get(h.ctx, clusterv1beta1.NamePrefix+childID, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("ClusterRole: %v, want NotFound", err)
			}
			if _, err := h.parentKube.RbacV1().ClusterRoleBindings().Get(h.ctx, clusterv1beta1.NamePrefix+childID, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("ClusterRoleBinding: %v, want NotFound", err)
			}
			if _, err := c.ClusterRegistrationRequests().Get(h.ctx, clusterv1beta1.NamePrefix+otherID, metav1.GetOptions{}); err != nil {
				t.Errorf("the other management cluster's registration: %v, want it kept", err)
			}
		})
	}
}

func TestDeletionBeforeTheManagedClusterIsBound(t *testing.T) {
	// Installed and registered, but deleted before the hub labelled the
	// ManagedCluster: the token it made for the cluster names the cluster id.
	h := newHarness(t, []runtime.Object{provisioned("prod", clusterUID), kubeconfigSecret("prod", childServer)},
		[]runtime.Object{&clusterv1beta1.ClusterRegistrationRequest{ObjectMeta: metav1.ObjectMeta{Name: clusterv1beta1.NamePrefix + childID}}})
	h.child(childServer, childID)
	h.sync(prodKey)
	if err := h.mgmtDyn.Resource(ClusterResource).Namespace(testNamespace).Delete(h.ctx, "prod", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.eventually("the Cluster gone from the cache", func() bool { return len(h.ctl.clustersIn(testNamespace)) == 0 })
	h.sync(prodKey)
	if _, err := h.clusternet.ClustersV1beta1().ClusterRegistrationRequests().Get(h.ctx, clusterv1beta1.NamePrefix+childID, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("ClusterRegistrationRequest: %v, want NotFound", err)
	}
	if n := len(h.tokenSecrets()); n != 0 {
		t.Errorf("bootstrap tokens = %d, want 0", n)
	}
}

func TestOnlyDiscoveredNamespacesAreActedOn(t *testing.T) {
	// Every namespace is watched only with '*': a Cluster in namespace
	// "tenant" is nothing to a hub discovering "capi-fleet".
	h := newHarness(t, []runtime.Object{provisioned("prod", clusterUID), kubeconfigSecret("prod", childServer)}, nil, withNamespaces("tenant"))
	child := h.child(childServer, childID)
	if again := h.sync(prodKey); again != 0 {
		t.Errorf("looks again after %s", again)
	}
	if len(child.applied()) != 0 || len(h.tokenSecrets()) != 0 || len(h.takeEvents()) != 0 {
		t.Error("acted on a Cluster of a namespace not in --cluster-api-namespaces")
	}
	if _, ok := h.ctl.clusters[testNamespace]; ok {
		t.Error("watches Clusters of a namespace not in --cluster-api-namespaces")
	}
}

func TestADeniedRegistrationIsAnEvent(t *testing.T) {
	denied := clusterv1beta1.RequestDenied
	crr := &clusterv1beta1.ClusterRegistrationRequest{
		ObjectMeta: metav1.ObjectMeta{Name: clusterv1beta1.NamePrefix + childID},
		Spec:       clusterv1beta1.ClusterRegistrationRequestSpec{ClusterID: childID},
		Status:     clusterv1beta1.ClusterRegistrationRequestStatus{Result: &denied, ErrorMessage: `spec.clusterName "prod" is taken by another cluster`},
	}
	h := newHarness(t, []runtime.Object{provisioned("prod", clusterUID), kubeconfigSecret("prod", childServer)}, []runtime.Object{crr})
	child := h.child(childServer, childID)
	h.sync(prodKey)
	events := h.takeEvents()
	if len(events) != 1 || !strings.Contains(events[0], ReasonRegistrationDenied) || !strings.Contains(events[0], "is taken by another cluster") {
		t.Errorf("events = %q, want %s with the approver's reason", events, ReasonRegistrationDenied)
	}
	if len(child.applied()) != 0 || len(h.tokenSecrets()) != 0 {
		t.Error("installed for a denied registration")
	}
	if got := h.ctl.keysOfRequest(crr); !slices.Equal(got, []string{prodKey}) {
		t.Errorf("a change of the request queues %q, want [%s]", got, prodKey)
	}
}

func names(secrets []corev1.Secret) []string {
	out := make([]string, len(secrets))
	for i, s := range secrets {
		out[i] = s.Name
	}
	return out
}

func unstructuredStringMap(obj map[string]any, field string) (map[string]string, bool, error) {
	raw, ok := obj[field].(map[string]any)
	if !ok {
		return nil, false, nil
	}
	out := map[string]string{}
	for k, v := range raw {
		s, _ := v.(string)
		out[k] = s
	}
	return out, true, nil
}

func TestWhatQueuesASync(t *testing.T) {
	mc := registeredCluster(childID, map[string]string{LabelManagement: managementUID})
	heartbeat := mc.DeepCopy()
	heartbeat.Status.Readyz = true
	relabelled := mc.DeepCopy()
	relabelled.Labels[LabelUID] = "other"
	approved, denied := clusterv1beta1.RequestApproved, clusterv1beta1.RequestDenied
	crr := &clusterv1beta1.ClusterRegistrationRequest{Status: clusterv1beta1.ClusterRegistrationRequestStatus{Result: &approved}}
	renewed := crr.DeepCopy()
	renewed.Status.TokenExpirationTimestamp = &metav1.Time{Time: time.Now()}
	deniedCRR := crr.DeepCopy()
	deniedCRR.Status.Result = &denied
	provisioning := clusterFixture{name: "prod", uid: clusterUID, phase: "Provisioning"}
	initialized := provisioning
	initialized.initialized = true
	phaseOnly := provisioning
	phaseOnly.phase = "Provisioned"
	beingDeleted := initialized
	beingDeleted.deleting = true
	tests := []struct {
		name     string
		same     func(old, cur any) bool
		old, cur any
		ignored  bool
	}{
		{"a ManagedCluster heartbeat", sameBinding, mc, heartbeat, true},
		{"a ManagedCluster relabelled", sameBinding, mc, relabelled, false},
		{"a token renewal", sameAnswer, crr, renewed, true},
		{"a registration denied", sameAnswer, crr, deniedCRR, false},
		{"a Cluster's phase alone", sameDecision, provisioning.build(), phaseOnly.build(), true},
		{"a Cluster's control plane initialized", sameDecision, provisioning.build(), initialized.build(), false},
		{"a Cluster being deleted", sameDecision, initialized.build(), beingDeleted.build(), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.same(tc.old, tc.cur); got != tc.ignored {
				t.Errorf("ignored = %v, want %v", got, tc.ignored)
			}
		})
	}
}

func TestALeftoverTokenDeregistersNoOtherClustersCluster(t *testing.T) {
	// Cluster "old" was deleted before its cluster registered; the same
	// cluster is now registered for Cluster "prod", which is alive.
	bound := map[string]string{LabelManagement: managementUID, LabelNamespace: testNamespace, LabelName: "prod", LabelUID: clusterUID}
	leftover := bootstraptoken.NewSecret(bootstraptoken.Token{ID: "abcdef", Secret: "0123456789abcdef"}, bootstraptoken.Options{
		TTL: TokenTTL, Labels: map[string]string{clusterv1beta1.LabelCreatedBy: createdBy, clusterv1beta1.LabelClusterID: childID,
			LabelManagement: managementUID, LabelNamespace: testNamespace, LabelUID: "old-uid"},
	})
	crr := &clusterv1beta1.ClusterRegistrationRequest{ObjectMeta: metav1.ObjectMeta{Name: clusterv1beta1.NamePrefix + childID}}
	h := newHarness(t, []runtime.Object{provisioned("prod", clusterUID)}, []runtime.Object{registeredCluster(childID, bound), crr, leftover})
	h.sync(testNamespace + "/old")
	if _, err := h.clusternet.ClustersV1beta1().ClusterRegistrationRequests().Get(h.ctx, crr.Name, metav1.GetOptions{}); err != nil {
		t.Errorf("the registration of the cluster Cluster prod holds: %v, want it kept", err)
	}
	if n := len(h.tokenSecrets()); n != 0 {
		t.Errorf("bootstrap tokens = %d, want the leftover deleted", n)
	}
}

// A Cluster whose kubeconfig's server answers with the id of a cluster
// registered before this Cluster's token existed (its author runs that
// server) does not get that ManagedCluster bound to it: otherwise deleting
// the Cluster would deregister someone else's cluster.
func TestAnEarlierRegistrationIsNotAdopted(t *testing.T) {
	h := newHarness(t, []runtime.Object{provisioned("prod", clusterUID), kubeconfigSecret("prod", childServer)}, nil)
	child := h.child(childServer, childID)
	victim := registeredCluster(childID, nil)
	victim.CreationTimestamp = metav1.NewTime(time.Now().Add(-time.Hour))
	if _, err := h.clusternet.ClustersV1beta1().ManagedClusters(victim.Namespace).Create(h.ctx, victim, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.eventually("the ManagedCluster in the cache", func() bool { return h.ctl.registered(childID) != nil })

	h.sync(prodKey)

	got, err := h.clusternet.ClustersV1beta1().ManagedClusters(victim.Namespace).Get(h.ctx, victim.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if uid := got.Labels[LabelUID]; uid != "" {
		t.Errorf("the earlier ManagedCluster was bound to Cluster UID %q: deleting that Cluster would deregister it", uid)
	}
	if n := len(child.applied()); n != 0 {
		t.Errorf("applies = %d, want 0", n)
	}
	if diff := cmp.Diff([]string{"Warning " + ReasonInstallFailed}, reasons(h.takeEvents())); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}
