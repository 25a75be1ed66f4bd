package deployer

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clocktesting "k8s.io/utils/clock/testing"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

const (
	nsFoo  = "/api/v1/namespaces/foo"
	depWeb = "/apis/apps/v1/namespaces/foo/deployments/web"
	svcWeb = "/api/v1/namespaces/foo/services/web"
	crd    = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com"
	widget = "/apis/example.com/v1/namespaces/foo/widgets/w1"
)

func TestDeployAllOrNothing(t *testing.T) {
	tests := []struct {
		name string
		// existing namespaces in the child
		existing []string
		objs     []map[string]any
		// rejectReal names objects whose real apply a webhook refuses
		rejectReal string
		wantWrites []string
		// wantErr is the start of the error; "" for success
		wantErr    string
		wantDryRun bool
		wantPaths  []string
	}{
		{
			name:     "all valid: every dry-run before any apply, namespaces first",
			existing: []string{"foo"},
			objs:     []map[string]any{deploymentObj("foo", "web", 3), serviceObj("foo", "web"), namespaceObj("foo")},
			wantWrites: []string{"DRYRUN " + nsFoo, "DRYRUN " + depWeb, "DRYRUN " + svcWeb,
				"APPLY " + nsFoo, "APPLY " + depWeb, "APPLY " + svcWeb},
			wantPaths: []string{nsFoo, depWeb, svcWeb},
		},
		{
			name:       "one invalid object: nothing applied",
			existing:   []string{"foo"},
			objs:       []map[string]any{serviceObj("foo", "web"), deploymentObj("foo", "web", -1)},
			wantWrites: []string{"DRYRUN " + svcWeb, "DRYRUN " + depWeb},
			wantErr:    `validating (server-side dry-run) Deployment foo/web in the child failed: Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0; fix the object's template`,
			wantDryRun: true,
			wantPaths:  []string{nsFoo},
		},
		{
			name: "new namespace: created, its objects dry-run, then applied",
			objs: []map[string]any{namespaceObj("foo"), deploymentObj("foo", "web", 3), serviceObj("foo", "web")},
			wantWrites: []string{"DRYRUN " + nsFoo, "DRYRUN " + depWeb, "DRYRUN " + svcWeb, // the last two refused: no namespace
				"APPLY " + nsFoo, "DRYRUN " + depWeb, "DRYRUN " + svcWeb,
				"APPLY " + nsFoo, "APPLY " + depWeb, "APPLY " + svcWeb},
			wantPaths: []string{nsFoo, depWeb, svcWeb},
		},
		{
			name: "new namespace and an invalid object: the namespace is deleted again",
			objs: []map[string]any{namespaceObj("foo"), deploymentObj("foo", "web", -1), serviceObj("foo", "web")},
			wantWrites: []string{"DRYRUN " + nsFoo, "DRYRUN " + depWeb, "DRYRUN " + svcWeb,
				"APPLY " + nsFoo, "DRYRUN " + depWeb, "DELETE " + nsFoo},
			wantErr:    `validating (server-side dry-run) Deployment foo/web in the child failed: Deployment.apps "web" is invalid`,
			wantDryRun: true,
		},
		{
			name:       "existing namespace is not deleted when an object fails",
			existing:   []string{"foo"},
			objs:       []map[string]any{namespaceObj("foo"), obj("example.com/v1", "Widget", "foo", "w1"), deploymentObj("foo", "web", -1), crdObj("example.com", "Widget", "widgets")},
			wantWrites: []string{"DRYRUN " + nsFoo, "DRYRUN " + crd, "DRYRUN " + depWeb},
			wantErr:    `validating (server-side dry-run) Deployment foo/web in the child failed`,
			wantDryRun: true,
			wantPaths:  []string{nsFoo},
		},
		{
			name:     "a CRD and its custom resource",
			existing: []string{"foo"},
			objs:     []map[string]any{obj("example.com/v1", "Widget", "foo", "w1"), crdObj("example.com", "Widget", "widgets")},
			wantWrites: []string{"DRYRUN " + crd, // the Widget cannot be mapped yet
				"APPLY " + crd, "DRYRUN " + widget,
				"APPLY " + crd, "APPLY " + widget},
			wantPaths: []string{nsFoo, crd, widget},
		},
		{
			name:       "a kind the child does not serve",
			existing:   []string{"foo"},
			objs:       []map[string]any{serviceObj("foo", "web"), obj("example.com/v1", "Gadget", "foo", "g1")},
			wantWrites: []string{"DRYRUN " + svcWeb},
			wantErr:    `validating (server-side dry-run) Gadget foo/g1 in the child failed: no matches for kind "Gadget" in version "example.com/v1"; install the kind's CustomResourceDefinition in the child`,
			wantDryRun: true,
			wantPaths:  []string{nsFoo},
		},
		{
			name:       "a real apply refused after every dry-run passed stops there",
			existing:   []string{"foo"},
			objs:       []map[string]any{serviceObj("foo", "web"), deploymentObj("foo", "web", 3)},
			rejectReal: depWeb,
			wantWrites: []string{"DRYRUN " + svcWeb, "DRYRUN " + depWeb, "APPLY " + svcWeb, "APPLY " + depWeb},
			wantErr:    `applying Deployment foo/web in the child failed: admission webhook "policy.example.com" denied the request; grant clusternet-agent`,
			wantPaths:  []string{nsFoo, svcWeb},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake, child := newFakeChild(t)
			for _, ns := range tc.existing {
				fake.Put("/api/v1/namespaces/"+ns, namespaceObj(ns))
			}
			if tc.rejectReal != "" {
				fake.RejectReal(tc.rejectReal)
			}
			d := description("app-demo-generic", tc.objs...)
			objs, err := Objects(d, child.Namespaced)
			if err != nil {
				t.Fatal(err)
			}
			res := child.Deploy(context.Background(), Plan{Objects: ApplyOrder(objs)})
			if diff := cmp.Diff(tc.wantWrites, fake.TakeWrites()); diff != "" {
				t.Errorf("writes to the child (-want +got):\n%s", diff)
			}
			switch {
			case tc.wantErr == "" && res.Err != nil:
				t.Fatalf("Deploy failed: %v", res.Err)
			case tc.wantErr != "" && (res.Err == nil || !strings.HasPrefix(res.Err.Error(), tc.wantErr)):
				t.Fatalf("Deploy error %v, want it to start with %q", res.Err, tc.wantErr)
			case tc.wantErr != "":
				var oe *ObjectError
				if !errors.As(res.Err, &oe) || oe.DryRun != tc.wantDryRun {
					t.Errorf("error %#v is not an ObjectError with DryRun %v", res.Err, tc.wantDryRun)
				}
			}
			got := fake.Paths()
			slices.Sort(got)
			want := slices.Clone(tc.wantPaths)
			slices.Sort(want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("objects in the child (-want +got):\n%s", diff)
			}
			if tc.wantErr == "" {
				for _, o := range objs {
					live := res.Live[o.Ref().Key()]
					if live == nil {
						t.Errorf("no live copy of %s in the result", o.Ref())
						continue
					}
					if !OwnedBy(live, d.Namespace, d.Name) || live.GetLabels()[appsv1alpha1.LabelSubscriptionName] != "app-demo" {
						t.Errorf("%s applied without the Description's and Subscription's labels: %v", o.Ref(), live.GetLabels())
					}
				}
			}
		})
	}
}

func TestDeploySkipsUnchangedOptOuts(t *testing.T) {
	fake, child := newFakeChild(t)
	fake.Put(nsFoo, namespaceObj("foo"))
	objs := mustObjects(t, description("d", deploymentObj("foo", "web", 3), serviceObj("foo", "web")))
	res := child.Deploy(context.Background(), Plan{Objects: objs, Skip: map[string]bool{objs[0].Ref().Key(): true}})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if diff := cmp.Diff([]string{"DRYRUN " + svcWeb, "APPLY " + svcWeb}, fake.TakeWrites()); diff != "" {
		t.Errorf("writes (-want +got):\n%s", diff)
	}
}

func TestRemove(t *testing.T) {
	fake, child := newFakeChild(t)
	fake.Put(nsFoo, namespaceObj("foo"))
	created := mustObjects(t, description("d", serviceObj("foo", "web")))[0]
	shared := mustObjects(t, description("other", serviceObj("foo", "api")))[0]
	before := mustObjects(t, description("d", serviceObj("foo", "pre")))[0]
	fake.Put(svcWeb, created.Marked(nil).Obj.Object)
	fake.Put("/api/v1/namespaces/foo/services/api", shared.Marked(nil).Obj.Object)
	fake.Put("/api/v1/namespaces/foo/services/pre", before.Obj.Object) // labelled, not created by Clusternet
	ctx := context.Background()
	d := description("d")
	tests := []struct {
		r          Ref
		sharedWith []string
		want       Removal
	}{
		{created.Ref(), nil, RemoveDelete},
		{shared.Ref(), []string{"other"}, RemoveKeep},
		{before.Ref(), nil, RemoveRelease},
		{Ref{APIVersion: "v1", Kind: "ConfigMap", Namespace: "foo", Name: "gone"}, nil, RemoveNothing},
	}
	for _, tc := range tests {
		got, err := child.Remove(ctx, tc.r, d.Namespace, tc.sharedWith)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("Remove(%s) = %d, want %d", tc.r, got, tc.want)
		}
	}
	if diff := cmp.Diff([]string{"DELETE " + svcWeb, "PATCH /api/v1/namespaces/foo/services/pre"}, fake.TakeWrites()); diff != "" {
		t.Errorf("writes (-want +got):\n%s", diff)
	}
	pre := fake.Object("/api/v1/namespaces/foo/services/pre")
	ok := pre != nil
	if !ok {
		t.Fatal("the Service that existed before Clusternet is gone")
	}
	if l, _ := pre["metadata"].(map[string]any)["labels"].(map[string]any); len(l) > 0 {
		t.Errorf("labels left on the released Service: %v", l)
	}
}

// A kind the child does not serve makes Mapping rediscover at most once per
// resetEvery: a Description naming a missing kind must not rediscover the
// child (through its tunnel) on every sync.
func TestMappingThrottlesRediscovery(t *testing.T) {
	f, child := newFakeChild(t)
	var mu sync.Mutex
	discoveries := 0
	f.Hold(func(r *http.Request) {
		if r.URL.Path == "/apis" {
			mu.Lock()
			discoveries++
			mu.Unlock()
		}
	})
	clk := clocktesting.NewFakePassiveClock(time.Unix(1000, 0))
	child.resets.Clock, child.resetEvery = clk, 10*time.Second
	missing := schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Gadget"}

	steps := []struct {
		name    string
		advance time.Duration
		// want is the discoveries made so far.
		want int
	}{
		// The first lookup discovers, misses, and rediscovers once.
		{name: "first miss", want: 2},
		{name: "second miss within the interval", advance: 3 * time.Second, want: 2},
		{name: "third miss still within the interval", advance: 6 * time.Second, want: 2},
		{name: "miss after the interval", advance: 2 * time.Second, want: 3},
		{name: "next miss right after", want: 3},
	}
	var got, want []int
	for _, s := range steps {
		clk.SetTime(clk.Now().Add(s.advance))
		if _, err := child.Mapping(missing); !meta.IsNoMatchError(err) {
			t.Fatalf("%s: Mapping(%v) = %v, want a no-match error", s.name, missing, err)
		}
		mu.Lock()
		got = append(got, discoveries)
		mu.Unlock()
		want = append(want, s.want)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("discoveries after each lookup (-want +got):\n%s", diff)
	}
}
