package cli

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
)

const failReason = `applying apps/v1 Deployment "foo/my-nginx": namespaces "foo" not found: add a feed of the Namespace, or create it in the child`

func TestRolloutStatusOnce(t *testing.T) {
	tests := []struct {
		name    string
		objects []runtime.Object
		args    []string
		wantOut string
		// wantUsage: a mistake in the arguments prints the usage.
		wantUsage bool
		// wantErr is the message printed on standard error; empty for exit 0.
		wantErr string
	}{
		{
			name:    "every cluster done: exit 0",
			objects: rolledOut(),
			args:    []string{"subscription/app-demo", "--watch=false"},
			wantOut: "child1 app-demo-generic: Success, 3/3 ready: available\n" +
				"child2 app-demo-generic: Success, 3/3 ready: available\n" +
				`subscription "app-demo" successfully rolled out to 2 clusters` + "\n",
		},
		{
			name: "a Description in Failure: exit 1 naming the cluster, the Description and the reason",
			objects: []runtime.Object{
				testSubscription(), testBase(nsChild1, id1), testBase(nsChild2, id2),
				testDescription(nsChild1, id1, appsv1alpha1.DescriptionPhaseSuccess, 3),
				testDescription(nsChild2, id2, appsv1alpha1.DescriptionPhaseFailure, 0, failed(failReason)),
			},
			args: []string{"subs", "app-demo", "--watch=false"},
			wantOut: "child1 app-demo-generic: Success, 3/3 ready: available\n" +
				"child2 app-demo-generic: Failure, 0/3 ready: failed: " + failReason + "\n" +
				`subscription "app-demo" failed in 1 of 2 clusters` + "\n",
			wantErr: `error: subscription "app-demo" in namespace "default" failed in cluster child2: Description ` + nsChild2 + "/app-demo-generic: " + failReason + "\n",
		},
		{
			name: "a Base that does not render fails its cluster",
			objects: []runtime.Object{
				testSubscription(), testBase(nsChild1, id1),
				testBase(nsChild2, id2, func(b *appsv1alpha1.Base) {
					b.Status.Conditions[0].Status, b.Status.Conditions[0].Reason = metav1.ConditionFalse, "OverrideFailed"
					b.Status.Conditions[0].Message = `Localization "lo": spec.overrides[0]: not valid JSON; the Descriptions stay as they were`
				}),
				testDescription(nsChild1, id1, appsv1alpha1.DescriptionPhaseSuccess, 3),
				testDescription(nsChild2, id2, appsv1alpha1.DescriptionPhaseSuccess, 3),
			},
			args: []string{"subscription/app-demo", "--watch=false"},
			wantOut: "child1 app-demo-generic: Success, 3/3 ready: available\n" +
				"child2: failed: rendering Base " + nsChild2 + `/app-demo failed (OverrideFailed): Localization "lo": spec.overrides[0]: not valid JSON; the Descriptions stay as they were` + "\n" +
				`subscription "app-demo" failed in 1 of 2 clusters` + "\n",
			wantErr: `error: subscription "app-demo" in namespace "default" failed in cluster child2: rendering Base ` + nsChild2 +
				`/app-demo failed (OverrideFailed): Localization "lo": spec.overrides[0]: not valid JSON; the Descriptions stay as they were` + "\n",
		},
		{
			name: "not done with --watch=false: exit 1 naming what each cluster waits for",
			objects: []runtime.Object{
				testSubscription(), testBase(nsChild1, id1),
				testDescription(nsChild1, id1, appsv1alpha1.DescriptionPhaseSuccess, 1),
			},
			args: []string{"subscription/app-demo", "--watch=false"},
			wantOut: "child1 app-demo-generic: Success, 1/3 ready: Deployment foo/my-nginx: 1 of 3 updated replicas available\n" +
				"child2: waiting for the hub to create its Base\n" +
				`Waiting for subscription "app-demo" rollout to finish: 0 of 2 clusters done` + "\n",
			wantErr: `error: subscription "app-demo" in namespace "default" is not rolled out yet: 2 of 2 clusters not done: ` + "\n" +
				"  cluster child1: Description " + nsChild1 + "/app-demo-generic: Deployment foo/my-nginx: 1 of 3 updated replicas available\n" +
				"  cluster child2: waiting for the hub to create its Base\n",
		},
		{
			name: "a report on an earlier spec does not count",
			objects: []runtime.Object{
				testSubscription(), testBase(nsChild1, id1), testBase(nsChild2, id2),
				testDescription(nsChild1, id1, appsv1alpha1.DescriptionPhaseSuccess, 3),
				testDescription(nsChild2, id2, appsv1alpha1.DescriptionPhaseSuccess, 3, func(d *appsv1alpha1.Description) { d.Generation = 2 }),
			},
			args: []string{"subscription/app-demo", "--watch=false"},
			wantOut: "child1 app-demo-generic: Success, 3/3 ready: available\n" +
				"child2 app-demo-generic: Success, 3/3 ready: waiting for the deployer to report on generation 2 (it reported on 1)\n" +
				`Waiting for subscription "app-demo" rollout to finish: 1 of 2 clusters done` + "\n",
			wantErr: `error: subscription "app-demo" in namespace "default" is not rolled out yet: 1 of 2 clusters not done: cluster child2: Description ` +
				nsChild2 + "/app-demo-generic: waiting for the deployer to report on generation 2 (it reported on 1)\n",
		},
		{
			name:    "a new generation not scheduled yet is not done, whatever the clusters say",
			objects: append(rolledOut()[1:], testSubscription(func(s *appsv1alpha1.Subscription) { s.Generation = 2 })),
			args:    []string{"subscription/app-demo", "--watch=false"},
			wantOut: "child1 app-demo-generic: Success, 3/3 ready: available\n" +
				"child2 app-demo-generic: Success, 3/3 ready: available\n" +
				`Waiting for subscription "app-demo": waiting for the hub to schedule generation 2` + "\n",
			wantErr: `error: subscription "app-demo" in namespace "default" is not rolled out yet: waiting for the hub to schedule generation 2` + "\n",
		},
		{
			name: "objects of an earlier Subscription of the same name do not count",
			objects: []runtime.Object{
				testSubscription(), testBase(nsChild1, id1), testBase(nsChild2, id2),
				testDescription(nsChild1, id1, appsv1alpha1.DescriptionPhaseSuccess, 3),
				testDescription(nsChild2, id2, appsv1alpha1.DescriptionPhaseSuccess, 3, func(d *appsv1alpha1.Description) {
					d.Labels[appsv1alpha1.LabelSubscriptionUID] = "an-earlier-uid"
				}),
			},
			args: []string{"subscription/app-demo", "--watch=false"},
			wantOut: "child1 app-demo-generic: Success, 3/3 ready: available\n" +
				"child2 app-demo-generic: not rendered yet\n" +
				`Waiting for subscription "app-demo" rollout to finish: 1 of 2 clusters done` + "\n",
			wantErr: `error: subscription "app-demo" in namespace "default" is not rolled out yet: 1 of 2 clusters not done: cluster child2: Description ` +
				nsChild2 + "/app-demo-generic: not rendered yet\n",
		},
		{
			name: "a truncated status.bindingClusters: the Bases name the other clusters, the ManagedClusters their names",
			objects: append(rolledOut()[1:], truncatedTo(nsChild1+"/child1"),
				&clusterv1beta1.ManagedCluster{ObjectMeta: metav1.ObjectMeta{Namespace: nsChild2, Name: "child2"}}),
			args: []string{"subscription/app-demo", "--watch=false"},
			wantOut: "child1 app-demo-generic: Success, 3/3 ready: available\n" +
				"child2 app-demo-generic: Success, 3/3 ready: available\n" +
				`subscription "app-demo" successfully rolled out to 2 clusters` + "\n",
		},
		{
			name: "a truncated status.bindingClusters: a cluster whose Base is not seen keeps the rollout from being done",
			objects: []runtime.Object{
				truncatedTo(nsChild1 + "/child1"), testBase(nsChild1, id1),
				testDescription(nsChild1, id1, appsv1alpha1.DescriptionPhaseSuccess, 3),
			},
			args: []string{"subscription/app-demo", "--watch=false"},
			wantOut: "child1 app-demo-generic: Success, 3/3 ready: available\n" +
				`Waiting for subscription "app-demo": ` + unseen + "\n",
			wantErr: `error: subscription "app-demo" in namespace "default" is not rolled out yet: ` + unseen + "\n",
		},
		{
			name: "a truncated status.bindingClusters: a cluster left out that is not done is not missed",
			objects: []runtime.Object{
				truncatedTo(nsChild1 + "/child1"), testBase(nsChild1, id1), testBase(nsChild2, id2),
				testDescription(nsChild1, id1, appsv1alpha1.DescriptionPhaseSuccess, 3),
				testDescription(nsChild2, id2, appsv1alpha1.DescriptionPhaseSuccess, 1),
			},
			args: []string{"subscription/app-demo", "--watch=false"},
			// No ManagedCluster to name it: its dedicated namespace does.
			wantOut: "child1 app-demo-generic: Success, 3/3 ready: available\n" +
				nsChild2 + " app-demo-generic: Success, 1/3 ready: Deployment foo/my-nginx: 1 of 3 updated replicas available\n" +
				`Waiting for subscription "app-demo" rollout to finish: 1 of 2 clusters done` + "\n",
			wantErr: `error: subscription "app-demo" in namespace "default" is not rolled out yet: 1 of 2 clusters not done: cluster ` + nsChild2 + `: Description ` +
				nsChild2 + "/app-demo-generic: Deployment foo/my-nginx: 1 of 3 updated replicas available\n",
		},
		{
			name:    "a Subscription that does not exist: named with its namespace",
			objects: nil,
			args:    []string{"subscription/nope"},
			wantErr: `error: subscription "nope" not found in namespace "default": list them with ` + "`kubectl clusternet get subs -n default`" +
				", or pick another namespace with -n\n",
		},
		{
			name:      "not a Subscription",
			objects:   rolledOut(),
			args:      []string{"deployment/my-nginx"},
			wantUsage: true,
			wantErr: "error: deployment/my-nginx is a Deployment, not a Subscription: rollout status follows Subscriptions, as in " +
				"`kubectl clusternet rollout status subscription/app-demo`; `kubectl clusternet tree deployment/my-nginx` shows which Subscriptions use it\n",
		},
		{
			name:      "a negative timeout",
			objects:   rolledOut(),
			args:      []string{"subscription/app-demo", "--timeout=-1s"},
			wantUsage: true,
			wantErr:   `error: --timeout "-1s": give a duration of 0 (wait for ever) or more, such as 5m` + "\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRolloutRun(tc.objects...)
			err := r.run(t, tc.args...)
			out := r.out.String()
			if tc.wantUsage {
				if !strings.HasPrefix(out, "Usage:\n  status (TYPE NAME | TYPE/NAME)") {
					t.Errorf("no usage printed:\n%s", out)
				}
				out = ""
			}
			if diff := cmp.Diff(tc.wantOut, out); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantErr, exitMessage(err)); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
}

// unseen is why a rollout of app-demo truncated to one cluster, whose other
// Base is not seen, is not done.
const unseen = "1 of its 2 bound clusters are not seen: the status lists 1, and the others' Bases cannot be listed with these credentials " +
	"(list bases and descriptions in all namespaces to follow every cluster, or read its Ready condition and READY column)"

// truncatedTo is app-demo whose status lists only listed of its clusters,
// as the hub writes it when they do not all fit MaxStatusBytes.
func truncatedTo(listed ...string) *appsv1alpha1.Subscription {
	return testSubscription(func(s *appsv1alpha1.Subscription) {
		s.Status.BoundClusters = int32(len(s.Status.BindingClusters))
		s.Status.BindingClustersOmitted = int32(len(s.Status.BindingClusters) - len(listed))
		s.Status.BindingClusters = listed
	})
}

// TestRolloutStatusWatches follows a rollout from Pending to done through
// the informers' watches, printing one plain line per change when piped.
func TestRolloutStatusWatches(t *testing.T) {
	r := newRolloutRun(testSubscription(), testBase(nsChild1, id1), testBase(nsChild2, id2),
		testDescription(nsChild1, id1, appsv1alpha1.DescriptionPhaseSuccess, 3),
		testDescription(nsChild2, id2, appsv1alpha1.DescriptionPhasePending, 0))
	r.start(t, "subscription/app-demo", "--timeout=30s")
	r.waitWatching(t, "descriptions ", "bases ", "subscriptions default")
	r.waitOutput(t, "1 of 2 clusters done")

	descs := r.cs.AppsV1alpha1().Descriptions(nsChild2)
	for _, ready := range []int32{1, 3} {
		d := testDescription(nsChild2, id2, appsv1alpha1.DescriptionPhaseSuccess, ready)
		if _, err := descs.UpdateStatus(context.Background(), d, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		if ready < 3 {
			r.waitOutput(t, "1/3 ready")
		}
	}
	if err := r.wait(t); err != nil {
		t.Fatalf("exit: %v\n%s", err, r.err.String())
	}
	want := "child1 app-demo-generic: Success, 3/3 ready: available\n" +
		"child2 app-demo-generic: Pending, 0/3 ready: waiting for its deployer to apply it\n" +
		`Waiting for subscription "app-demo" rollout to finish: 1 of 2 clusters done` + "\n" +
		"child2 app-demo-generic: Success, 1/3 ready: Deployment foo/my-nginx: 1 of 3 updated replicas available\n" +
		"child2 app-demo-generic: Success, 3/3 ready: available\n" +
		`subscription "app-demo" successfully rolled out to 2 clusters` + "\n"
	if diff := cmp.Diff(want, r.out.String()); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	if strings.Contains(r.out.String()+r.err.String(), "\x1b") {
		t.Errorf("piped output holds escape codes:\n%q", r.out.String())
	}
}

// TestRolloutStatusTimeout names the clusters not done and what they wait
// for, and not the ones done.
func TestRolloutStatusTimeout(t *testing.T) {
	r := newRolloutRun(testSubscription(), testBase(nsChild1, id1), testBase(nsChild2, id2),
		testDescription(nsChild1, id1, appsv1alpha1.DescriptionPhaseSuccess, 3),
		testDescription(nsChild2, id2, appsv1alpha1.DescriptionPhaseSuccess, 2))
	err := r.run(t, "subscription/app-demo", "--timeout=1s")
	want := `error: timed out after 1s waiting for subscription "app-demo" in namespace "default" to roll out: 1 of 2 clusters not done: ` +
		"cluster child2: Description " + nsChild2 + "/app-demo-generic: Deployment foo/my-nginx: 2 of 3 updated replicas available\n"
	if diff := cmp.Diff(want, exitMessage(err)); diff != "" {
		t.Errorf("error (-want +got):\n%s", diff)
	}
}

// TestRolloutStatusTerminal redraws the table in place on a terminal: the
// cursor goes up over the previous drawing, which is cleared.
func TestRolloutStatusTerminal(t *testing.T) {
	r := newRolloutRun(testSubscription(), testBase(nsChild1, id1), testBase(nsChild2, id2),
		testDescription(nsChild1, id1, appsv1alpha1.DescriptionPhaseSuccess, 3),
		testDescription(nsChild2, id2, appsv1alpha1.DescriptionPhasePending, 0))
	r.terminal = true
	r.start(t, "subscription/app-demo")
	r.waitWatching(t, "descriptions ", "bases ", "subscriptions default")
	r.waitOutput(t, "1 of 2 clusters done")
	d := testDescription(nsChild2, id2, appsv1alpha1.DescriptionPhaseSuccess, 3)
	if _, err := r.cs.AppsV1alpha1().Descriptions(nsChild2).UpdateStatus(context.Background(), d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := r.wait(t); err != nil {
		t.Fatalf("exit: %v\n%s", err, r.err.String())
	}
	want := `Waiting for subscription "app-demo" rollout to finish: 1 of 2 clusters done` + "\n" +
		"CLUSTER   DESCRIPTION        PHASE     READY   STATUS\n" +
		"child1    app-demo-generic   Success   3/3     available\n" +
		"child2    app-demo-generic   Pending   0/3     waiting for its deployer to apply it\n" +
		"\x1b[4A\r\x1b[J" +
		`subscription "app-demo" successfully rolled out to 2 clusters` + "\n" +
		"CLUSTER   DESCRIPTION        PHASE     READY   STATUS\n" +
		"child1    app-demo-generic   Success   3/3     available\n" +
		"child2    app-demo-generic   Success   3/3     available\n"
	if diff := cmp.Diff(want, r.out.String()); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
}

// TestTablePrinterFitsTheTerminal cuts lines to the terminal's width, so
// none wraps, and the drawing to its height, so the cursor can go back
// over all of it; colour paints the phase only.
func TestTablePrinterFitsTheTerminal(t *testing.T) {
	p := evaluate(subscriptionData{Sub: testSubscription(),
		Bases: []*appsv1alpha1.Base{testBase(nsChild1, id1), testBase(nsChild2, id2)},
		Descriptions: []*appsv1alpha1.Description{
			testDescription(nsChild1, id1, appsv1alpha1.DescriptionPhaseSuccess, 3),
			testDescription(nsChild2, id2, appsv1alpha1.DescriptionPhaseFailure, 0, failed(failReason)),
		}})
	var out syncBuffer
	tp := &tablePrinter{out: &out, size: func() (int, int) { return 40, 4 }, colour: true}
	tp.show(p)
	want := `subscription "app-demo" failed in 1 of 2` + "\n" +
		"CLUSTER   DESCRIPTION        PHASE     R\n" +
		"... and 2 more lines: widen the terminal or pipe the output\n"
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	tp.size = func() (int, int) { return 60, 0 }
	tp.show(p)
	want += "\x1b[3A\r\x1b[J" +
		`subscription "app-demo" failed in 1 of 2 clusters` + "\n" +
		"CLUSTER   DESCRIPTION        PHASE     READY   STATUS\n" +
		"child1    app-demo-generic   \x1b[32mSuccess\x1b[0m   3/3     available\n" +
		"child2    app-demo-generic   \x1b[31mFailure\x1b[0m   0/3     failed: apply\n"
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
}

// TestRolloutStatusForbidden: a caller who may not read a cluster's
// dedicated namespace gets the refusal naming the resource, the namespace
// and the cluster, whether it watches or lists once; one who may read each
// namespace but not list them all is served namespace by namespace.
func TestRolloutStatusForbidden(t *testing.T) {
	refusal := func(verb, resource string) string {
		return "error: you may not " + verb + " " + resource + ".apps.clusternet.io in namespace \"" + nsChild2 +
			"\" (the dedicated namespace of cluster child2) of the parent: ask a parent admin for get, list and watch on them there " +
			"(check with `kubectl auth can-i " + verb + " " + resource + ".apps.clusternet.io -n " + nsChild2 + "`): " +
			resource + ".apps.clusternet.io is forbidden: user \"alice\" cannot list resource in the namespace\n"
	}
	for _, tc := range []struct {
		name      string
		forbidden []string // namespaces where descriptions may not be listed
		args      []string
		wantErr   string
	}{
		{name: "once, one namespace forbidden", forbidden: []string{"", nsChild2}, args: []string{"subscription/app-demo", "--watch=false"},
			wantErr: refusal("list", "descriptions")},
		{name: "watching, one namespace forbidden", forbidden: []string{"", nsChild2}, args: []string{"subscription/app-demo", "--timeout=20s"},
			wantErr: refusal("list", "descriptions")},
		{name: "once, only all namespaces forbidden", forbidden: []string{""}, args: []string{"subscription/app-demo", "--watch=false"}},
		{name: "watching, only all namespaces forbidden", forbidden: []string{""}, args: []string{"subscription/app-demo", "--timeout=20s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRolloutRun(rolledOut()...)
			for _, ns := range tc.forbidden {
				r.forbid("list", "descriptions", ns)
			}
			err := r.run(t, tc.args...)
			if diff := cmp.Diff(tc.wantErr, exitMessage(err)); diff != "" {
				t.Errorf("error (-want +got):\n%s\noutput:\n%s", diff, r.out.String())
			}
			if tc.wantErr == "" && !strings.HasSuffix(r.out.String(), "successfully rolled out to 2 clusters\n") {
				t.Errorf("output:\n%s", r.out.String())
			}
		})
	}
}

// TestRolloutStatusSubscriptionDeleted ends a watch whose Subscription is deleted.
func TestRolloutStatusSubscriptionDeleted(t *testing.T) {
	r := newRolloutRun(testSubscription(), testBase(nsChild1, id1),
		testDescription(nsChild1, id1, appsv1alpha1.DescriptionPhasePending, 0))
	r.start(t, "subscription/app-demo")
	r.waitWatching(t, "descriptions ", "bases ", "subscriptions default")
	r.waitOutput(t, "0 of 2 clusters done")
	if err := r.cs.AppsV1alpha1().Subscriptions("default").Delete(context.Background(), "app-demo", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	want := `error: subscription "app-demo" in namespace "default" was deleted while waiting for its rollout` + "\n"
	if diff := cmp.Diff(want, exitMessage(r.wait(t))); diff != "" {
		t.Errorf("error (-want +got):\n%s", diff)
	}
}

func TestParseResourceArgs(t *testing.T) {
	mapper, err := testMapper(t)()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args     []string
		wantKind string
		wantErr  string
	}{
		{args: []string{"subscriptions.apps.clusternet.io/app-demo"}, wantKind: "Subscription"},
		{args: []string{"sub", "app-demo"}, wantKind: "Subscription"},
		{args: []string{"deploy/my-nginx"}, wantKind: "Deployment"},
		{args: []string{"deployments.v1.apps/my-nginx"}, wantKind: "Deployment"},
		{args: []string{"app-demo"}, wantErr: `argument "app-demo": give TYPE/NAME, as in U`},
		{args: []string{"subs/a/b"}, wantErr: `name "a/b": a name has no "/"; give TYPE/NAME, as in U`},
		{args: []string{"subs/a", "b"}, wantErr: `arguments ["subs/a" "b"]: give TYPE/NAME or TYPE NAME, as in U`},
		{args: nil, wantErr: `0 arguments []: give one resource as TYPE/NAME, as in U`},
		{args: []string{"nope/x"}, wantErr: `the parent does not serve a resource type "nope"`},
	} {
		r, err := parseResourceArgs(mapper, tc.args, "U")
		switch {
		case tc.wantErr != "":
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Errorf("%q: error %v, want %q", tc.args, err, tc.wantErr)
			}
		case err != nil:
			t.Errorf("%q: %v", tc.args, err)
		case r.mapping.GroupVersionKind.Kind != tc.wantKind:
			t.Errorf("%q names a %s, want a %s", tc.args, r.mapping.GroupVersionKind.Kind, tc.wantKind)
		}
	}
}
