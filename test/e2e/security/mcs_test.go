package security

import (
	"context"
	"strings"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	mcsv1alpha1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"

	"github.com/clusternet/clusternet/pkg/mcs"
	"github.com/clusternet/clusternet/pkg/server/agent"
	"github.com/clusternet/clusternet/test/e2e/e2eutil"
	"github.com/clusternet/clusternet/test/testbed"
)

// TestExportedEndpointsBelongToTheirCluster plays cluster B's agent, with
// the parent token it really holds (from its credentials Secret in its
// child), against cluster A's exported endpoints (docs/mcs.md "Who may
// reach what"): it may neither read nor write the slices in A's dedicated
// namespace, nor A's conflict report; and slices it writes in its own
// namespace as an export of a service no Subscription sent it a
// ServiceExport of reach no importer.
func TestExportedEndpointsBelongToTheirCluster(t *testing.T) {
	ctx := context.Background()
	tb := testbed.ForTest(t, 2)
	parent := tb.Parent
	a, b := e2eutil.SetUpMCS(t, tb, 1)
	var victim discoveryv1.EndpointSlice
	e2eutil.WaitFor(t, 60*time.Second, "cluster A's exported slice in the parent", func(ctx context.Context) (bool, string) {
		kube, err := parent.Clientset()
		if err != nil {
			return false, err.Error()
		}
		l, err := kube.DiscoveryV1().EndpointSlices(a.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil || len(l.Items) == 0 {
			return false, "none yet"
		}
		victim = l.Items[0]
		return true, ""
	})

	childB, err := b.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	secret, err := childB.CoreV1().Secrets("clusternet-system").Get(ctx, agent.CredentialsSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	asB, err := kubernetes.NewForConfig(asToken(t, parent, string(secret.Data["token"])))
	if err != nil {
		t.Fatal(err)
	}
	agentB := "system:serviceaccount:" + b.Namespace + ":clusternet-agent"
	forged := func(ns string) *discoveryv1.EndpointSlice {
		s := mcs.ExportedSlice(&discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: "web-forged"},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.66.66.66"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		}, mcs.ServiceKey{Namespace: e2eutil.MCSNamespace, Name: "web"},
			mcs.ExportedProperties{Type: mcsv1alpha1.ClusterSetIP}, ns)
		s.Labels[mcsv1alpha1.LabelSourceCluster] = a.ID
		return s
	}

	for _, tc := range []struct {
		name string
		do   func() error
		want string
	}{
		{"refused: write endpoints into cluster A's namespace", func() error {
			_, err := asB.DiscoveryV1().EndpointSlices(a.Namespace).Create(ctx, forged(a.Namespace), metav1.CreateOptions{})
			return err
		}, `User "` + agentB + `" cannot create resource "endpointslices" in API group "discovery.k8s.io" in the namespace "` + a.Namespace + `"`},
		{"refused: overwrite cluster A's exported endpoints", func() error {
			s := victim.DeepCopy()
			s.Endpoints = forged(a.Namespace).Endpoints
			_, err := asB.DiscoveryV1().EndpointSlices(a.Namespace).Update(ctx, s, metav1.UpdateOptions{})
			return err
		}, `User "` + agentB + `" cannot update resource "endpointslices" in API group "discovery.k8s.io" in the namespace "` + a.Namespace + `"`},
		{"refused: delete cluster A's exported endpoints", func() error {
			return asB.DiscoveryV1().EndpointSlices(a.Namespace).Delete(ctx, victim.Name, metav1.DeleteOptions{})
		}, `User "` + agentB + `" cannot delete resource "endpointslices" in API group "discovery.k8s.io" in the namespace "` + a.Namespace + `"`},
		{"refused: read cluster A's exported endpoints", func() error {
			_, err := asB.DiscoveryV1().EndpointSlices(a.Namespace).List(ctx, metav1.ListOptions{})
			return err
		}, `User "` + agentB + `" cannot list resource "endpointslices" in API group "discovery.k8s.io" in the namespace "` + a.Namespace + `"`},
		{"refused: read every cluster's endpoints", func() error {
			_, err := asB.DiscoveryV1().EndpointSlices(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
			return err
		}, `User "` + agentB + `" cannot list resource "endpointslices" in API group "discovery.k8s.io" at the cluster scope`},
		{"refused: read cluster A's conflict report", func() error {
			_, err := asB.CoreV1().ConfigMaps(a.Namespace).Get(ctx, mcs.ConflictsConfigMap, metav1.GetOptions{})
			return err
		}, `User "` + agentB + `" cannot get resource "configmaps" in API group "" in the namespace "` + a.Namespace + `"`},
		{"refused: read another ConfigMap of its own namespace", func() error {
			_, err := asB.CoreV1().ConfigMaps(b.Namespace).List(ctx, metav1.ListOptions{})
			return err
		}, `User "` + agentB + `" cannot list resource "configmaps" in API group "" in the namespace "` + b.Namespace + `"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want Forbidden: %s", err, tc.want)
			}
		})
	}

	t.Run("B exports a service it was not given: nothing reaches an importer", func(t *testing.T) {
		// A compromised child keeps its token but not the real agent's
		// loop, which would withdraw an export its child does not have.
		if err := b.Agent.Stop(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		// B's agent may write slices in its own namespace, labelled as an
		// export of web (even claiming to be A); no Subscription sent B a
		// ServiceExport of web, so the hub must not take them.
		if _, err := asB.DiscoveryV1().EndpointSlices(b.Namespace).Create(ctx, forged(b.Namespace), metav1.CreateOptions{}); err != nil {
			t.Fatalf("B's agent writing an export in its own namespace: %v", err)
		}
		// What the hub imports for B (its ServiceImport), in the parent.
		imported := func() []string {
			return strings.Fields(e2eutil.MustKubectl(t, parent, "", "get", "endpointslices", "-n", b.Namespace,
				"-l", "endpointslice.kubernetes.io/managed-by=mcs-controller.clusternet.io,multicluster.kubernetes.io/service-name=web",
				"-o", `jsonpath={range .items[*]}{.metadata.labels.multicluster\.kubernetes\.io/source-cluster}={range .endpoints[*]}{.addresses[0]},{end} {end}`))
		}
		// Scaling A's web makes the hub sync web again after the forged
		// slice is in its cache: once it imports A's two pods, it has
		// decided on the forged slice too.
		e2eutil.MustKubectl(t, a.Cluster, "", "scale", "deployment", "web", "-n", e2eutil.MCSNamespace, "--replicas=2")
		e2eutil.WaitFor(t, 90*time.Second, "A's two pods imported for B", func(context.Context) (bool, string) {
			got := imported()
			n := 0
			for _, s := range got {
				if rest, ok := strings.CutPrefix(s, a.ID+"="); ok {
					n += strings.Count(rest, ",")
				}
			}
			return n == 2, strings.Join(got, " ")
		})
		for _, s := range imported() {
			if strings.Contains(s, "10.66.66.66") || !strings.HasPrefix(s, a.ID+"=") {
				t.Errorf("imported for B: %s, want only A's pods (B's unauthorised export reached an importer)", s)
			}
		}
	})
}
