package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/clusternet/clusternet/charts"
	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/bootstraptoken"
	clusternetfake "github.com/clusternet/clusternet/pkg/generated/clientset/versioned/fake"
	"github.com/clusternet/clusternet/pkg/registration"
	"github.com/clusternet/clusternet/pkg/server/agent"
)

const (
	thisParent         = "https://parent.example.com:6443"
	helmManagedByLabel = "app.kubernetes.io/managed-by"
)

func labelledObject(apiVersion, kind, namespace, name string, labels map[string]any) *unstructured.Unstructured {
	u := obj(apiVersion, kind, namespace, name)
	if labels != nil {
		u.Object["metadata"].(map[string]any)["labels"] = labels
	}
	return u
}

func joinRegistrationSecret(parentURL string) *unstructured.Unstructured {
	s := labelledObject("v1", "Secret", charts.Namespace, agentRegistrationSecret, map[string]any{clusterv1beta1.LabelCreatedBy: installedBy})
	s.Object["data"] = map[string]any{"parentURL": base64.StdEncoding.EncodeToString([]byte(parentURL))}
	return s
}

// TestJoinRefusesToTakeOver: join refuses a child holding an agent it did
// not install, or its own joined to another parent, naming the object and
// the fix; its own leftovers for this parent, and a namespace it did not
// make, are fine.
func TestJoinRefusesToTakeOver(t *testing.T) {
	joinLabel := map[string]any{clusterv1beta1.LabelCreatedBy: installedBy}
	for _, tc := range []struct {
		name    string
		objects []runtime.Object
		want    []string
	}{
		{name: "nothing there"},
		{name: "a namespace of someone else's", objects: []runtime.Object{labelledObject("v1", "Namespace", "", charts.Namespace, nil)}},
		{name: "join's own leftovers for this parent", objects: []runtime.Object{
			labelledObject("apps/v1", "Deployment", charts.Namespace, "clusternet-agent", joinLabel), joinRegistrationSecret(thisParent),
		}},
		{name: "helm's agent", objects: []runtime.Object{
			labelledObject("apps/v1", "Deployment", charts.Namespace, "clusternet-agent", map[string]any{helmManagedByLabel: "Helm"}),
		}, want: []string{"the child has Deployment clusternet-system/clusternet-agent already, not installed by join", "helm uninstall clusternet-agent -n clusternet-system"}},
		{name: "a ClusterRole of the chart's fixed name", objects: []runtime.Object{
			labelledObject("rbac.authorization.k8s.io/v1", "ClusterRole", "", "clusternet-agent", nil),
		}, want: []string{"the child has ClusterRole clusternet-agent already, not installed by join"}},
		{name: "join's agent of another parent", objects: []runtime.Object{joinRegistrationSecret("https://other.example.com:6443")},
			want: []string{"the child's agent is joined to another parent, https://other.example.com:6443", "run `kubectl clusternet unjoin` against that parent first"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dyn, mapper, _ := fakeChildObjects(tc.objects...)
			err := refuseTakeover(context.Background(), &fleetClients{childDynamic: dyn, childMapper: mapper}, thisParent)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("refuseTakeover: %v", err)
				}
				return
			}
			for _, want := range tc.want {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("error = %v\nwant it to contain %q", err, want)
				}
			}
		})
	}
}

// applyingChild is a child whose apiserver takes server-side applies
// (stored unless dry run) and refuses those refuse says to.
func applyingChild(t *testing.T, refuse func(resource string, dryRun bool) bool) (*fleetClients, func() []string) {
	dyn, mapper, listKinds := fakeChildObjects()
	dyn.PrependReactor("patch", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		p := a.(k8stesting.PatchActionImpl)
		dryRun := len(p.PatchOptions.DryRun) > 0
		if refuse(p.Resource.Resource, dryRun) {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: p.Resource.Resource}, p.Name, errors.New("no"))
		}
		u := &unstructured.Unstructured{}
		if err := json.Unmarshal(p.Patch, &u.Object); err != nil {
			return true, nil, err
		}
		if !dryRun {
			if err := dyn.Tracker().Create(p.Resource, u, p.Namespace); err != nil {
				return true, nil, err
			}
		}
		return true, u, nil
	})
	left := func() []string {
		var names []string
		for gvr := range listKinds {
			list, err := dyn.Resource(gvr).List(context.Background(), metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range list.Items {
				// CRDs stay, as helm leaves them: deleting one deletes its objects.
				if o.GetKind() != "CustomResourceDefinition" {
					names = append(names, kindAndName(&o))
				}
			}
		}
		return names
	}
	return &fleetClients{childDynamic: dyn, childMapper: mapper, childKube: k8sfake.NewClientset()}, left
}

// TestInstallLeavesNothingHalfMade: a refusal in the dry run, or a
// failure in the real pass, leaves the child as join found it, the
// namespace join made included.
func TestInstallLeavesNothingHalfMade(t *testing.T) {
	for _, tc := range []struct {
		name   string
		refuse func(resource string, dryRun bool) bool
		want   string
	}{
		{name: "dry run refused", refuse: func(r string, dryRun bool) bool { return r == "clusterroles" && dryRun },
			want: "the child refuses to apply ClusterRole clusternet-agent"},
		{name: "real pass fails", refuse: func(r string, dryRun bool) bool { return r == "deployments" && !dryRun },
			want: "the child refuses to apply Deployment clusternet-system/clusternet-agent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clients, left := applyingChild(t, tc.refuse)
			j := &joiner{JoinOptions: &JoinOptions{ParentURL: thisParent, clients: clients, now: time.Now, Timeout: time.Minute}}
			j.token, _ = bootstraptoken.Parse("abcdef.0123456789abcdef")
			_, err := j.install(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "join removed the") {
				t.Errorf("error = %v\nwant it to contain %q and that join removed what it made", err, tc.want)
			}
			if got := left(); len(got) > 0 {
				t.Errorf("left in the child: %v", got)
			}
			if j.installed {
				t.Error("installed is true though nothing is left: Run would point at unjoin for nothing")
			}
		})
	}
}

// TestJoinTokenGoesUnlessPending: the token join made is deleted when
// join fails, but kept (and said so) while the registration is Pending,
// since approving it lets the agent register with it; and it goes once
// the registration is approved.
func TestJoinTokenGoesUnlessPending(t *testing.T) {
	tok, _ := bootstraptoken.Parse("abcdef.0123456789abcdef")
	tokenSecret := func() *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: tok.SecretName(), Namespace: bootstraptoken.Namespace}}
	}
	tokenLeft := func(j *joiner) bool {
		_, err := j.clients.parentKube.CoreV1().Secrets(bootstraptoken.Namespace).Get(context.Background(), tok.SecretName(), metav1.GetOptions{})
		return err == nil
	}
	newJoiner := func(objects ...runtime.Object) *joiner {
		return &joiner{
			JoinOptions: &JoinOptions{token: tok, now: time.Now, Timeout: time.Minute,
				clients: &fleetClients{parentKube: k8sfake.NewClientset(tokenSecret()), childKube: k8sfake.NewClientset(), parentClusternet: clusternetfake.NewSimpleClientset(objects...)}},
			progress: &progress{out: &bytes.Buffer{}}, createdToken: true, id: "0b3c",
		}
	}

	t.Run("failure", func(t *testing.T) {
		j := newJoiner()
		_ = j.failed(context.Background(), errors.New("step 4 of 6: boom"))
		if tokenLeft(j) {
			t.Error("the token join made outlives the failed join")
		}
	})
	t.Run("still pending", func(t *testing.T) {
		j := newJoiner()
		err := j.failed(context.Background(), &pendingError{errors.New("ClusterRegistrationRequest is still Pending")})
		if !tokenLeft(j) {
			t.Error("the token went though the agent still needs it once approved")
		}
		if err == nil || !strings.Contains(err.Error(), "join's bootstrap token abcdef is kept") {
			t.Errorf("error = %v, want it to say the token is kept and why", err)
		}
	})
	t.Run("approved", func(t *testing.T) {
		crr := &clusterv1beta1.ClusterRegistrationRequest{ObjectMeta: metav1.ObjectMeta{Name: clusterv1beta1.NamePrefix + "0b3c"},
			Status: clusterv1beta1.ClusterRegistrationRequestStatus{Result: ptr.To(clusterv1beta1.RequestApproved)}}
		j := newJoiner(crr)
		j.waitUntil = time.Now().Add(time.Minute)
		if _, err := j.waitRegistered(context.Background()); err != nil {
			t.Fatal(err)
		}
		if tokenLeft(j) {
			t.Error("the token outlives the approved registration")
		}
	})
}

// TestUnjoinChecksTheParent: unjoin refuses, unless --force, to strip a
// child the parent does not know or whose agent registered elsewhere, and
// when the parent refuses to deregister, the child keeps its agent.
func TestUnjoinChecksTheParent(t *testing.T) {
	const id = "0b3c"
	kubeSystem := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: metav1.NamespaceSystem, UID: id}}
	crr := &clusterv1beta1.ClusterRegistrationRequest{ObjectMeta: metav1.ObjectMeta{Name: clusterv1beta1.NamePrefix + id}}
	deployment := labelledObject("apps/v1", "Deployment", charts.Namespace, "clusternet-agent", map[string]any{clusterv1beta1.LabelCreatedBy: installedBy})
	for _, tc := range []struct {
		name      string
		force     bool
		parent    []runtime.Object
		child     []runtime.Object
		forbidden bool
		want      string
	}{
		{name: "unknown to the parent", want: "the parent https://parent.example.com:6443 has neither a ManagedCluster nor a ClusterRegistrationRequest of cluster id 0b3c"},
		{name: "unknown to the parent, forced", force: true},
		{name: "registered elsewhere", parent: []runtime.Object{crr}, child: []runtime.Object{joinRegistrationSecret("https://other.example.com:6443")},
			want: "the child's agent registered with https://other.example.com:6443 (Secret clusternet-system/clusternet-agent-cluster-registration), not with this parent's https://parent.example.com:6443"},
		{name: "registered here", parent: []runtime.Object{crr}, child: []runtime.Object{joinRegistrationSecret(thisParent)}},
		{name: "the parent refuses to deregister", parent: []runtime.Object{crr}, child: []runtime.Object{joinRegistrationSecret(thisParent), deployment}, forbidden: true,
			want: "deregistering needs delete on clusterregistrationrequests"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dyn, mapper, _ := fakeChildObjects(tc.child...)
			parentClusternet := clusternetfake.NewSimpleClientset(tc.parent...)
			if tc.forbidden {
				parentClusternet.PrependReactor("delete", "*", func(k8stesting.Action) (bool, runtime.Object, error) {
					return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "clusterregistrationrequests"}, "", errors.New("no"))
				})
			}
			o := &UnjoinOptions{Force: tc.force, Timeout: time.Second, IOStreams: streamsForTest(),
				childConfig: &rest.Config{Host: "https://child.example.com:6443"}, parentConfig: &rest.Config{Host: thisParent},
				clients: &fleetClients{childKube: k8sfake.NewClientset(kubeSystem), childDynamic: dyn, childMapper: mapper,
					parentKube: k8sfake.NewClientset(), parentClusternet: parentClusternet}}
			err := o.Run(context.Background())
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unjoin: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v\nwant it to contain %q", err, tc.want)
			}
			for _, o := range tc.child {
				u := o.(*unstructured.Unstructured)
				if got, err := (&fleetClients{childDynamic: dyn, childMapper: mapper}).getInChild(context.Background(), u); err != nil || got == nil {
					t.Errorf("%s is gone from the child (%v), though unjoin failed", kindAndName(u), err)
				}
			}
		})
	}
}

// TestAgentNamesMatchTheAgent: unjoin deletes the agent's credentials
// Secret by the name the agent keeps it under, and join's registration
// Secret is the one the chart renders.
func TestAgentNamesMatchTheAgent(t *testing.T) {
	if agentCredentialsSecret != agent.CredentialsSecret {
		t.Errorf("unjoin deletes Secret %q, the agent keeps its credentials in %q", agentCredentialsSecret, agent.CredentialsSecret)
	}
	footprint, err := agentFootprint()
	if err != nil {
		t.Fatal(err)
	}
	var secrets []string
	for _, o := range footprint {
		if o.GetKind() == "Secret" {
			secrets = append(secrets, o.GetNamespace()+"/"+o.GetName())
		}
	}
	if want := []string{agentNamespace + "/" + agentRegistrationSecret}; !slices.Equal(secrets, want) {
		t.Errorf("the chart renders Secrets %v, create token writes %v", secrets, want)
	}
}

// TestUnjoinWaitsForTheAgentsPodsAndCredentials: unjoin is not done while
// an agent pod could still write its credentials back, nor while the
// cluster's dedicated namespace is still in the parent (Terminating).
func TestUnjoinWaitsForTheAgentsPodsAndCredentials(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "clusternet-agent-abc", Namespace: charts.Namespace, Labels: map[string]string{"app": "clusternet-agent"}}}
	credentials := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: agentCredentialsSecret, Namespace: charts.Namespace}}
	dedicated := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "clusternet-x7k2p", DeletionTimestamp: ptr.To(metav1.Now()), Finalizers: []string{"kubernetes"},
		Labels: map[string]string{clusterv1beta1.LabelClusterID: "0b3c", clusterv1beta1.LabelCreatedBy: registration.CreatedByHub}}}
	u := &unjoiner{
		UnjoinOptions: &UnjoinOptions{Timeout: 1500 * time.Millisecond, clients: &fleetClients{
			childKube: k8sfake.NewClientset(pod, credentials), parentClusternet: clusternetfake.NewSimpleClientset(), parentKube: k8sfake.NewClientset(dedicated),
		}},
		id:             "0b3c",
		removedObjects: []*unstructured.Unstructured{obj("apps/v1", "Deployment", charts.Namespace, "clusternet-agent")},
	}
	_, err := u.waitGone(context.Background())
	for _, want := range []string{"agent pod clusternet-system/clusternet-agent-abc in the child", "Secret clusternet-system/clusternet-agent-credentials in the child",
		"namespace clusternet-x7k2p in the parent"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error = %v\nwant it to contain %q", err, want)
		}
	}
}

// TestJoinSaysWaitForATerminatingNamespace: a namespace being deleted
// needs waiting, not more rights.
func TestJoinSaysWaitForATerminatingNamespace(t *testing.T) {
	const want = "wait until it is gone (kubectl get namespace clusternet-system)"
	terminating := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: charts.Namespace, DeletionTimestamp: ptr.To(metav1.Now()), Finalizers: []string{"kubernetes"}}}
	j := &joiner{JoinOptions: &JoinOptions{ParentURL: thisParent, now: time.Now, clients: &fleetClients{childKube: k8sfake.NewClientset(terminating)}}}
	if _, err := j.install(context.Background()); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("install: error = %v\nwant it to contain %q", err, want)
	}
	refused := apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "x", errors.New("namespace is being terminated"))
	refused.ErrStatus.Details.Causes = []metav1.StatusCause{{Type: corev1.NamespaceTerminatingCause}}
	if err := inChild("apply", "Secret clusternet-system/x", refused); !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "cluster-admin") {
		t.Errorf("inChild: error = %v\nwant it to contain %q and not ask for cluster-admin", err, want)
	}
}

// TestJoinWaitReadyRetriesTheParent: a failing list in the parent is
// retried until the wait is over, not the end of join.
func TestJoinWaitReadyRetriesTheParent(t *testing.T) {
	parent := clusternetfake.NewSimpleClientset()
	calls := 0
	parent.PrependReactor("list", "managedclusters", func(k8stesting.Action) (bool, runtime.Object, error) {
		calls++
		return true, nil, apierrors.NewInternalError(errors.New("etcdserver: leader changed"))
	})
	j := &joiner{JoinOptions: &JoinOptions{Timeout: 1500 * time.Millisecond, clients: &fleetClients{childKube: k8sfake.NewClientset(), parentClusternet: parent}}, id: "0b3c",
		waitUntil: time.Now().Add(1500 * time.Millisecond)}
	_, err := j.waitReady(context.Background())
	if want := "is not Ready with a live tunnel after 1.5s: list managedclusters in the parent: Internal error occurred: etcdserver: leader changed"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error = %v\nwant it to contain %q", err, want)
	}
	if calls < 2 {
		t.Errorf("the parent was asked %d times, want a retry", calls)
	}
}

// TestInstallAppliesTheChartsCRDs: join installs the chart's crds/ the
// child lacks, as helm does, and leaves one the child has as it is.
func TestInstallAppliesTheChartsCRDs(t *testing.T) {
	var patched []string
	clients, left := applyingChild(t, func(resource string, dryRun bool) bool {
		if resource == "customresourcedefinitions" {
			patched = append(patched, resource)
		}
		return false
	})
	ch, err := charts.Load(charts.Agent)
	if err != nil {
		t.Fatal(err)
	}
	crds, err := charts.CRDs(ch)
	if err != nil || len(crds) < 2 {
		t.Fatalf("the agent chart's CRDs: %d, %v; want at least two", len(crds), err)
	}
	crdResource := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	// The child has the first already.
	if err := clients.childDynamic.(interface {
		Tracker() k8stesting.ObjectTracker
	}).Tracker().Create(crdResource, crds[0].DeepCopy(), ""); err != nil {
		t.Fatal(err)
	}
	j := &joiner{JoinOptions: &JoinOptions{ParentURL: thisParent, clients: clients, now: time.Now, Timeout: time.Minute}}
	j.token, _ = bootstraptoken.Parse("abcdef.0123456789abcdef")
	line, err := j.install(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(patched) != len(crds)-1 {
		t.Errorf("join applied %d CRDs, want %d: the one the child has stays as it is", len(patched), len(crds)-1)
	}
	if !strings.Contains(line, crds[1].GetName()) || strings.Contains(line, crds[0].GetName()) {
		t.Errorf("line = %q, want it to name the CRDs join made and only those", line)
	}
	for _, crd := range crds {
		if got, err := clients.getInChild(context.Background(), crd); err != nil || got == nil {
			t.Errorf("CRD %s is not in the child (%v)", crd.GetName(), err)
		}
	}
	if len(left()) == 0 {
		t.Error("install made nothing")
	}
}
