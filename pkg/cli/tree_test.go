package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/dynamic"
	dynamicfake "k8s.io/client-go/dynamic/fake"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned/fake"
)

// aggregated is what the hub's status aggregation writes for app-demo's
// feeds: foo everywhere, my-nginx available in child1 only.
func aggregated(s *appsv1alpha1.Subscription) {
	detail := func(cluster, id string, st appsv1alpha1.FeedStatus) appsv1alpha1.FeedStatusPerCluster {
		return appsv1alpha1.FeedStatusPerCluster{FeedStatus: st, ClusterName: cluster, ClusterID: id}
	}
	done := appsv1alpha1.FeedStatus{Applied: true, Available: true}
	s.Status.AggregatedStatuses = []appsv1alpha1.AggregatedStatus{
		{Feed: feedNamespace, FeedStatusSummary: done,
			FeedStatusDetails: []appsv1alpha1.FeedStatusPerCluster{detail("child1", id1, done), detail("child2", id2, done)}},
		{Feed: feedDeployment,
			FeedStatusSummary: appsv1alpha1.FeedStatus{Reason: "child2: " + failReason, Replicas: 3, ReadyReplicas: 3, AvailableReplicas: 3},
			FeedStatusDetails: []appsv1alpha1.FeedStatusPerCluster{
				detail("child1", id1, appsv1alpha1.FeedStatus{Applied: true, Available: true, Replicas: 3, ReadyReplicas: 3, AvailableReplicas: 3}),
				detail("child2", id2, appsv1alpha1.FeedStatus{Reason: failReason}),
			}},
	}
	s.Status.Conditions[2].Status, s.Status.Conditions[2].Reason = "False", "DeploymentFailed"
	s.Status.Conditions[2].Message = "1 of 2 Descriptions failed: " + nsChild2 + "/app-demo-generic in cluster child2: " + failReason
}

// halfFailed is app-demo done in child1 and failed in child2.
func halfFailed() []runtime.Object {
	return []runtime.Object{
		testSubscription(aggregated), testBase(nsChild1, id1), testBase(nsChild2, id2),
		testDescription(nsChild1, id1, appsv1alpha1.DescriptionPhaseSuccess, 3),
		testDescription(nsChild2, id2, appsv1alpha1.DescriptionPhaseFailure, 0, failed(failReason)),
	}
}

// template is the Deployment template my-nginx of namespace foo, as the
// shadow API serves it, with the label the seed's feedSelector selects.
func nginxTemplate() *unstructured.Unstructured {
	u := obj("apps/v1", "Deployment", "foo", "my-nginx")
	u.SetLabels(map[string]string{"clusternet-app": "multi-cluster-nginx"})
	u.SetCreationTimestamp(metaTime())
	return u
}

// runTree runs `kubectl clusternet tree` in namespace against cs and the
// templates, five minutes after the fixtures were made.
func runTree(t *testing.T, cs versioned.Interface, dyn dynamic.Interface, namespace string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	o := NewTreeOptions(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	o.namespace = namespace
	o.mapper = testMapper(t)
	o.newClient = func() (versioned.Interface, error) { return cs, nil }
	o.templates = func() (dynamic.Interface, error) { return dyn, nil }
	o.now = func() time.Time { return fixedTime.Add(5 * time.Minute) }
	o.allowColor = func(io.Writer) bool { return false }
	cmd := newCmdTree(o, nil, nil)
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SilenceErrors = true
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

func shadowTemplates(objs ...runtime.Object) dynamic.Interface {
	return dynamicfake.NewSimpleDynamicClient(runtime.NewScheme(), objs...)
}

func TestTreeText(t *testing.T) {
	tests := []struct {
		name      string
		objects   []runtime.Object
		templates []runtime.Object
		namespace string
		args      []string
		want      string
		wantErr   string
	}{
		{
			name:    "a Subscription: feeds, then per cluster its Base, Descriptions and objects",
			objects: halfFailed(), namespace: "default", args: []string{"subscription/app-demo"},
			want: `
NAMESPACE          NAME                                 STATUS             READY   AGE     MESSAGE
default            Subscription/app-demo                DeploymentFailed   1/2     5m      1 of 2 Descriptions failed: clusternet-8x2kq/app-demo-generic in cluster child2: ` + failReason + `
                   ├─Namespace/foo                      Available          2/2
foo                ├─Deployment/my-nginx                NotApplied         1/2             child2: ` + failReason + `
clusternet-5l82l   ├─ManagedCluster/child1              Done               3/3
clusternet-5l82l   │ └─Base/app-demo                    Rendered                   4m59s
clusternet-5l82l   │   └─Description/app-demo-generic   Success            3/3     4m58s
                   │     ├─Namespace/foo                Available
foo                │     └─Deployment/my-nginx          Available          3/3
clusternet-8x2kq   └─ManagedCluster/child2              Failed             0/3
clusternet-8x2kq     └─Base/app-demo                    Rendered                   4m59s
clusternet-8x2kq       └─Description/app-demo-generic   Failure            0/3     4m58s   ` + failReason + `
                         ├─Namespace/foo                NotReported
foo                      └─Deployment/my-nginx          NotReported        0/3
`,
		},
		{
			name:    "a cluster waiting for its Base; a feed that selects, not resolved yet",
			objects: []runtime.Object{testSubscription(), testBase(nsChild1, id1), testDescription(nsChild1, id1, appsv1alpha1.DescriptionPhaseSuccess, 3)},
			args:    []string{"subs", "app-demo"}, namespace: "default",
			want: `
NAMESPACE          NAME                                                 STATUS      READY   AGE     MESSAGE
default            Subscription/app-demo                                Ready       1/2     5m
                   ├─Namespace/foo
foo                ├─Deployment -l clusternet-app=multi-cluster-nginx
clusternet-5l82l   ├─ManagedCluster/child1                              Done        3/3
clusternet-5l82l   │ └─Base/app-demo                                    Rendered            4m59s
clusternet-5l82l   │   └─Description/app-demo-generic                   Success     3/3     4m58s
                   │     ├─Namespace/foo                                Available
foo                │     └─Deployment/my-nginx                          Available   3/3
clusternet-8x2kq   └─ManagedCluster/child2                              Waiting                     waiting for the hub to create its Base
`,
		},
		{
			name: "a template: the Subscriptions that select it, and its state in each of their clusters",
			objects: append(halfFailed(), testSubscription(func(s *appsv1alpha1.Subscription) {
				s.Name, s.UID = "other", "other-uid"
				s.Spec.Feeds = s.Spec.Feeds[:1]
			})),
			templates: []runtime.Object{nginxTemplate()}, namespace: "foo", args: []string{"deployment/my-nginx"},
			want: `
NAMESPACE          NAME                        STATUS             READY   AGE   MESSAGE
foo                Deployment/my-nginx                            1/2     5m
default            └─Subscription/app-demo     DeploymentFailed   1/2     5m    1 of 2 Descriptions failed: clusternet-8x2kq/app-demo-generic in cluster child2: ` + failReason + `
clusternet-5l82l     ├─ManagedCluster/child1   Available          3/3
clusternet-8x2kq     └─ManagedCluster/child2   NotReported        0/3           ` + failReason + `
`,
		},
		{
			name:      "a template that does not exist",
			objects:   halfFailed(),
			namespace: "foo", args: []string{"deployment/nope"},
			wantErr: `error: deployments.apps "nope" not found in namespace "foo": list them with ` + "`kubectl clusternet get deployments.apps`" +
				", or pick another namespace with -n\n",
		},
		{
			name:      "a ManagedCluster is not the root of a tree",
			objects:   halfFailed(),
			namespace: "default", args: []string{"mcls/child1"},
			wantErr: `error: ManagedCluster "child1": tree starts from a Subscription, a template or a HelmChart, as in ` + treeUsage + "\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := runTree(t, fake.NewClientset(tc.objects...), shadowTemplates(tc.templates...), tc.namespace, tc.args...)
			if tc.wantErr != "" {
				if diff := cmp.Diff(tc.wantErr, exitMessage(err)); diff != "" {
					t.Errorf("error (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(strings.TrimPrefix(tc.want, "\n"), out); diff != "" {
				t.Errorf("tree (-want +got):\n%s\ngot:\n%s", diff, out)
			}
		})
	}
}

// outline is a tree as "<depth> <kind> <namespace>/<name> <status> <ready>" lines.
func outline(n TreeNode, depth int) []string {
	ready := "-"
	if n.Ready != nil {
		ready = fmt.Sprintf("%d/%d %s", n.Ready.Ready, n.Ready.Total, n.Ready.Of)
	}
	out := []string{fmt.Sprintf("%d %s %s/%s%s %s %s %s", depth, n.Kind, n.Namespace, n.Name, n.Selector, n.Role, n.Status, ready)}
	for _, c := range n.Children {
		out = append(out, outline(c, depth+1)...)
	}
	return out
}

func TestTreeJSON(t *testing.T) {
	out, _, err := runTree(t, fake.NewClientset(halfFailed()...), shadowTemplates(), "default", "subscription/app-demo", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var root TreeNode
	if err := json.Unmarshal([]byte(out), &root); err != nil {
		t.Fatalf("-o json is not a tree: %v\n%s", err, out)
	}
	want := []string{
		"0 Subscription default/app-demo  DeploymentFailed 1/2 clusters",
		"1 Namespace /foo feed Available 2/2 clusters",
		"1 Deployment foo/my-nginx feed NotApplied 1/2 clusters",
		"1 ManagedCluster " + nsChild1 + "/child1  Done 3/3 replicas",
		"2 Base " + nsChild1 + "/app-demo  Rendered -",
		"3 Description " + nsChild1 + "/app-demo-generic  Success 3/3 replicas",
		"4 Namespace /foo  Available -",
		"4 Deployment foo/my-nginx  Available 3/3 replicas",
		"1 ManagedCluster " + nsChild2 + "/child2  Failed 0/3 replicas",
		"2 Base " + nsChild2 + "/app-demo  Rendered -",
		"3 Description " + nsChild2 + "/app-demo-generic  Failure 0/3 replicas",
		"4 Namespace /foo  NotReported -",
		"4 Deployment foo/my-nginx  NotReported 0/3 replicas",
	}
	if diff := cmp.Diff(want, outline(root, 0)); diff != "" {
		t.Errorf("tree (-want +got):\n%s", diff)
	}
	if root.Children[2].ClusterID != id1 || root.Children[3].Children[0].Children[0].Message != failReason ||
		root.CreationTimestamp == nil || !root.CreationTimestamp.Time.Equal(fixedTime) {
		t.Errorf("cluster id, reason or creation time missing:\n%s", out)
	}
	if _, _, err := runTree(t, fake.NewClientset(halfFailed()...), shadowTemplates(), "default", "subscription/app-demo", "-o", "wide"); err == nil ||
		!strings.Contains(err.Error(), `--output "wide": give json or yaml, or leave it out for the text tree`) {
		t.Errorf("-o wide: %v", err)
	}
}

// TestTreeTemplateSubscriptionsForbidden: a caller who may not list
// Subscriptions in all namespaces gets those of the template's namespace,
// and is told so.
func TestTreeTemplateSubscriptionsForbidden(t *testing.T) {
	r := newRolloutRun(append(halfFailed(), testSubscription(func(s *appsv1alpha1.Subscription) { s.Namespace = "foo" }))...)
	r.forbid("list", "subscriptions", "")
	out, errOut, err := runTree(t, r.cs, shadowTemplates(nginxTemplate()), "foo", "deployment/my-nginx")
	if err != nil {
		t.Fatal(err)
	}
	want := `
NAMESPACE          NAME                        STATUS    READY   AGE   MESSAGE
foo                Deployment/my-nginx                   0/2     5m
foo                └─Subscription/app-demo     Ready     0/2     5m
clusternet-5l82l     ├─ManagedCluster/child1   Waiting                 waiting for the hub to create its Base
clusternet-8x2kq     └─ManagedCluster/child2   Waiting                 waiting for the hub to create its Base
`
	if diff := cmp.Diff(strings.TrimPrefix(want, "\n"), out); diff != "" {
		t.Errorf("tree (-want +got):\n%s\ngot:\n%s", diff, out)
	}
	if wantErr := `warning: you may not list subscriptions.apps.clusternet.io in all namespaces: only namespace "foo" was searched` + "\n"; errOut != wantErr {
		t.Errorf("stderr = %q, want %q", errOut, wantErr)
	}
}

// TestFeedNodesCountTruncatedDetails: a feed's clusters are counted from
// the hub's counts when it truncated feedStatusDetails, and from the
// details otherwise (a hub of before the counts listed every cluster).
func TestFeedNodesCountTruncatedDetails(t *testing.T) {
	waiting := appsv1alpha1.FeedStatusPerCluster{ClusterName: "edge-9000", FeedStatus: appsv1alpha1.FeedStatus{Applied: true, Reason: "0 of 3 replicas available"}}
	done := appsv1alpha1.FeedStatusPerCluster{ClusterName: "edge-0", FeedStatus: appsv1alpha1.FeedStatus{Applied: true, Available: true}}
	sub := testSubscription(func(s *appsv1alpha1.Subscription) {
		s.Status.AggregatedStatuses = []appsv1alpha1.AggregatedStatus{
			{Feed: feedDeployment, AvailableClusters: 9999, FeedStatusDetails: []appsv1alpha1.FeedStatusPerCluster{waiting, done}, FeedStatusDetailsOmitted: 9998},
			{Feed: feedNamespace, FeedStatusDetails: []appsv1alpha1.FeedStatusPerCluster{done, done}},
		}
	})
	var got []TreeCount
	for _, n := range feedNodes(sub) {
		got = append(got, *n.Ready)
	}
	want := []TreeCount{{Ready: 9999, Total: 10000, Of: countClusters}, {Ready: 2, Total: 2, Of: countClusters}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("feed counts (-want +got):\n%s", diff)
	}
}

// A Description no deployer has reported on has no phase (the hub creates
// it with no status): the tree says so rather than Unknown.
func TestTreeDescriptionNotPickedUp(t *testing.T) {
	d := testDescription(nsChild1, id1, "", 0)
	d.Status = appsv1alpha1.DescriptionStatus{}
	if got := descriptionNode(descriptionProgress{Description: d}).Status; got != "NotPickedUp" {
		t.Errorf("status %q, want NotPickedUp", got)
	}
	d.Status.Phase = appsv1alpha1.DescriptionPhasePending
	if got := descriptionNode(descriptionProgress{Description: d}).Status; got != "Pending" {
		t.Errorf("status %q, want Pending", got)
	}
}
