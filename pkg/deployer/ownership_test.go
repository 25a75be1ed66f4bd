package deployer

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned/fake"
	"github.com/clusternet/clusternet/pkg/generated/informers/externalversions"
	"github.com/clusternet/clusternet/test/memchild"
)

const (
	nsMonitoring = "/api/v1/namespaces/monitoring"
	teamCM       = "/api/v1/namespaces/monitoring/configmaps/team-data"
	ourCM        = "/api/v1/namespaces/monitoring/configmaps/ours"
	nsDefault    = "/api/v1/namespaces/default"
)

// withMeta sets metadata fields of o (labels, annotations, managedFields...).
func withMeta(o map[string]any, fields map[string]any) map[string]any {
	for k, v := range fields {
		o["metadata"].(map[string]any)[k] = v
	}
	return o
}

// teamNamespace is a namespace a team made by hand before Clusternet came.
func teamNamespace(name string) map[string]any {
	return withMeta(namespaceObj(name), map[string]any{
		"labels":          map[string]any{"team": "observability"},
		"resourceVersion": "7",
		"managedFields": []any{map[string]any{"manager": "kubectl-create", "operation": "Update", "apiVersion": "v1",
			"fieldsType": "FieldsV1", "fieldsV1": map[string]any{}}},
	})
}

func configMapObj(namespace, name string) map[string]any {
	return obj("v1", "ConfigMap", namespace, name, map[string]any{"data": map[string]any{"k": name}})
}

func TestDecideRemoval(t *testing.T) {
	const dedicated = "clusternet-abcde"
	live := func(ns string, labels map[string]any, createdBy string, deleting bool) *unstructured.Unstructured {
		u := unstr(namespaceObj(ns))
		if labels != nil {
			u.Object["metadata"].(map[string]any)["labels"] = labels
		}
		if createdBy != "" {
			u.SetAnnotations(map[string]string{AnnotationCreatedBy: createdBy})
		}
		if deleting {
			u.SetDeletionTimestamp(&metav1.Time{Time: time.Unix(1, 0)})
		}
		return u
	}
	ours := map[string]any{appsv1alpha1.LabelDescriptionName: "d1", appsv1alpha1.LabelDescriptionNamespace: dedicated}
	other := map[string]any{appsv1alpha1.LabelDescriptionName: "d2", appsv1alpha1.LabelDescriptionNamespace: dedicated}
	otherCluster := map[string]any{appsv1alpha1.LabelDescriptionName: "d1", appsv1alpha1.LabelDescriptionNamespace: "clusternet-zzzzz"}
	ns := func(name string) Ref { return Ref{APIVersion: "v1", Kind: "Namespace", Name: name} }
	tests := []struct {
		name       string
		r          Ref
		live       *unstructured.Unstructured
		sharedWith []string
		want       Removal
	}{
		{"gone", ns("foo"), nil, nil, RemoveNothing},
		{"no Clusternet labels (taken over or released)", ns("foo"), live("foo", map[string]any{"team": "x"}, "clusternet-abcde/d1", false), nil, RemoveNothing},
		{"labelled for another cluster", ns("foo"), live("foo", otherCluster, "clusternet-zzzzz/d1", false), nil, RemoveNothing},
		{"created by Clusternet, nobody else lists it", ns("foo"), live("foo", ours, "clusternet-abcde/d1", false), nil, RemoveDelete},
		{"created by another Description, labelled by it, nobody lists it", ns("foo"), live("foo", other, "clusternet-abcde/d2", false), nil, RemoveDelete},
		{"existed before Clusternet", ns("monitoring"), live("monitoring", ours, "", false), nil, RemoveRelease},
		{"another Description still lists it", ns("foo"), live("foo", ours, "clusternet-abcde/d1", false), []string{"d2"}, RemoveKeep},
		{"existed before, another Description still lists it", ns("monitoring"), live("monitoring", ours, "", false), []string{"d2"}, RemoveKeep},
		{"being deleted", ns("foo"), live("foo", ours, "clusternet-abcde/d1", true), nil, RemoveWait},
		{"existed before and being deleted by its owner", ns("monitoring"), live("monitoring", ours, "", true), nil, RemoveRelease},
		{"system namespace, even marked", ns("kube-node-lease"), live("kube-node-lease", ours, "clusternet-abcde/d1", false), nil, RemoveRelease},
		{"default", ns("default"), live("default", ours, "", false), nil, RemoveRelease},
		{"a ConfigMap named like a system namespace is no namespace", Ref{APIVersion: "v1", Kind: "ConfigMap", Namespace: "foo", Name: "default"},
			live("default", ours, "clusternet-abcde/d1", false), nil, RemoveDelete},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := DecideRemoval(tc.r, tc.live, dedicated, tc.sharedWith); got != tc.want {
				t.Errorf("DecideRemoval = %d, want %d", got, tc.want)
			}
		})
	}
}

// Deploy marks what its apply creates, never what existed before, and
// every later apply (of any Description) carries the mark over.
func TestDeployMarksWhatItCreates(t *testing.T) {
	ctx := context.Background()
	fakeChild, child := newFakeChild(t)
	fakeChild.Put(nsMonitoring, teamNamespace("monitoring"))
	fakeChild.Put(teamCM, configMapObj("monitoring", "team-data"))

	d1 := description("d1", namespaceObj("monitoring"), configMapObj("monitoring", "ours"), namespaceObj("foo"))
	d2 := description("d2", namespaceObj("foo"), namespaceObj("monitoring"))
	createdBy := func() map[string]string {
		out := map[string]string{}
		for _, p := range []string{nsMonitoring, ourCM, nsFoo, teamCM} {
			a, _ := fakeChild.Object(p)["metadata"].(map[string]any)["annotations"].(map[string]any)
			out[p], _ = a[AnnotationCreatedBy].(string)
		}
		return out
	}
	want := map[string]string{nsMonitoring: "", teamCM: "", ourCM: "clusternet-abcde/d1", nsFoo: "clusternet-abcde/d1"}
	for i, step := range []*appsv1alpha1.Description{d1, d1, d2, d1} {
		if res := child.Deploy(ctx, Plan{Objects: ApplyOrder(mustObjects(t, step))}); res.Err != nil {
			t.Fatalf("deploy %d (%s): %v", i, step.Name, res.Err)
		}
		if diff := cmp.Diff(want, createdBy()); diff != "" {
			t.Errorf("after deploy %d (%s), %s annotations (-want +got):\n%s", i, step.Name, AnnotationCreatedBy, diff)
		}
	}
	// The team's own label stays next to ours.
	if got := fakeChild.Object(nsMonitoring)["metadata"].(map[string]any)["labels"].(map[string]any)["team"]; got != "observability" {
		t.Errorf("team label of the pre-existing namespace = %v, want observability", got)
	}
}

// A failed attempt leaves a namespace that existed untouched, and deletes
// the one it created.
func TestDeployFailedDryRunTouchesNoExistingNamespace(t *testing.T) {
	fakeChild, child := newFakeChild(t)
	fakeChild.Put(nsMonitoring, teamNamespace("monitoring"))
	before := fmt.Sprint(fakeChild.Object(nsMonitoring))
	objs := mustObjects(t, description("d", namespaceObj("monitoring"), namespaceObj("foo"), deploymentObj("foo", "web", -1)))
	res := child.Deploy(context.Background(), Plan{Objects: ApplyOrder(objs)})
	if res.Err == nil || !strings.HasPrefix(res.Err.Error(), "validating (server-side dry-run) Deployment foo/web") {
		t.Fatalf("Deploy error %v, want the dry-run of Deployment foo/web to fail", res.Err)
	}
	wantWrites := []string{"DRYRUN " + nsMonitoring, "DRYRUN " + nsFoo, "DRYRUN " + depWeb,
		"APPLY " + nsFoo, "DRYRUN " + depWeb, "DELETE " + nsFoo}
	if diff := cmp.Diff(wantWrites, fakeChild.TakeWrites()); diff != "" {
		t.Errorf("writes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(before, fmt.Sprint(fakeChild.Object(nsMonitoring))); diff != "" {
		t.Errorf("the pre-existing namespace changed (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff([]string{nsMonitoring}, fakeChild.Paths()); diff != "" {
		t.Errorf("objects in the child (-want +got):\n%s", diff)
	}
}

// ownershipEnv is a controller over one fake child and the Descriptions
// of one dedicated namespace, for cleanup and prune.
type ownershipEnv struct {
	t       *testing.T
	fake    *fakeChild
	w       *childWatch
	cs      *fake.Clientset
	indexer cache.Indexer
	rec     *record.FakeRecorder
	c       *Controller
	// queue is what the controller queues (its loop's queue in production).
	queue workqueue.TypedDelayingInterface[string]
}

func newOwnershipEnv(t *testing.T) *ownershipEnv {
	fakeChild, child := newFakeChild(t)
	cs := fake.NewClientset()
	informer := externalversions.NewSharedInformerFactory(cs, 0).Apps().V1alpha1().Descriptions()
	rec := record.NewFakeRecorder(100)
	queue := workqueue.NewTypedDelayingQueue[string]()
	t.Cleanup(queue.ShutDown)
	w := newChildWatch(context.Background(), "cluster-1", child, func(string, watchEvent) {})
	t.Cleanup(w.stop)
	return &ownershipEnv{t: t, fake: fakeChild, w: w, cs: cs, indexer: informer.Informer().GetIndexer(), rec: rec, queue: queue,
		c: &Controller{opts: Options{Parent: cs, Events: rec}, lister: informer.Lister(), queue: queue,
			states: map[string]*descState{}, children: map[string]*childWatch{}}}
}

// deploy applies d in the child and stores it, with the status a deploy
// writes, in the parent.
func (e *ownershipEnv) deploy(d *appsv1alpha1.Description) *appsv1alpha1.Description {
	e.t.Helper()
	objs := mustObjects(e.t, d)
	if res := e.w.child.Deploy(context.Background(), Plan{Objects: ApplyOrder(objs)}); res.Err != nil {
		e.t.Fatalf("deploying %s: %v", d.Name, res.Err)
	}
	d = d.DeepCopy()
	d.Status = appsv1alpha1.DescriptionStatus{Phase: appsv1alpha1.DescriptionPhaseSuccess, ObservedGeneration: d.Generation}
	for _, o := range objs {
		d.Status.ManifestStatuses = append(d.Status.ManifestStatuses, appsv1alpha1.ManifestStatus{Feed: o.Ref().Feed(),
			FeedStatus: appsv1alpha1.FeedStatus{Applied: true, Available: true}})
	}
	e.store(d)
	return d
}

func (e *ownershipEnv) store(d *appsv1alpha1.Description) {
	e.t.Helper()
	ctx := context.Background()
	if _, err := e.cs.AppsV1alpha1().Descriptions(d.Namespace).Get(ctx, d.Name, metav1.GetOptions{}); err == nil {
		if _, err := e.cs.AppsV1alpha1().Descriptions(d.Namespace).Update(ctx, d, metav1.UpdateOptions{}); err != nil {
			e.t.Fatal(err)
		}
	} else if _, err := e.cs.AppsV1alpha1().Descriptions(d.Namespace).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	if err := e.indexer.Update(d); err != nil {
		e.t.Fatal(err)
	}
}

// remove deletes d in the parent and runs its cleanup until the finalizer
// is gone, as the work loop would; it fails the test if that does not
// happen within a few rounds.
func (e *ownershipEnv) remove(d *appsv1alpha1.Description) {
	e.t.Helper()
	ctx := context.Background()
	d = d.DeepCopy()
	d.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	e.store(d)
	for round := range 5 {
		again, err := e.c.cleanup(ctx, e.w, d)
		if err != nil {
			e.t.Fatalf("cleanup of %s, round %d: %v", d.Name, round, err)
		}
		got, err := e.cs.AppsV1alpha1().Descriptions(d.Namespace).Get(ctx, d.Name, metav1.GetOptions{})
		if err != nil {
			e.t.Fatal(err)
		}
		if !slices.Contains(got.Finalizers, appsv1alpha1.Finalizer) {
			if again != 0 {
				e.t.Errorf("cleanup of %s removed the finalizer and asked to come back in %s", d.Name, again)
			}
			if err := e.indexer.Delete(got); err != nil {
				e.t.Fatal(err)
			}
			return
		}
		if again == 0 {
			e.t.Fatalf("cleanup of %s, round %d: finalizer kept, and no retry asked for", d.Name, round)
		}
		d = got
	}
	e.t.Fatalf("cleanup of %s did not finish in 5 rounds; objects in the child: %v", d.Name, e.fake.Paths())
}

func (e *ownershipEnv) events() []string {
	var out []string
	for {
		select {
		case ev := <-e.rec.Events:
			out = append(out, ev)
		default:
			return out
		}
	}
}

func (e *ownershipEnv) queued() []string {
	var out []string
	for e.queue.Len() > 0 {
		k, _ := e.queue.Get()
		e.queue.Done(k)
		out = append(out, k)
	}
	return out
}

// released says the object at path carries nothing of Clusternet.
func (e *ownershipEnv) released(path string) string {
	o := e.fake.Object(path)
	if o == nil {
		return "it is gone"
	}
	meta := o["metadata"].(map[string]any)
	var problems []string
	for _, field := range []string{"labels", "annotations"} {
		m, _ := meta[field].(map[string]any)
		for k := range m {
			if strings.HasPrefix(k, "apps.clusternet.io/") {
				problems = append(problems, field+" "+k)
			}
		}
	}
	entries, _ := meta["managedFields"].([]any)
	for _, mf := range entries {
		if mf.(map[string]any)["manager"] == FieldManager {
			problems = append(problems, "managedFields entry of "+FieldManager)
		}
	}
	return strings.Join(problems, ", ")
}

func sortedPaths(f *fakeChild) []string {
	p := f.Paths()
	slices.Sort(p)
	return p
}

// Deleting a Description deletes what Clusternet created and releases what
// existed before, system namespaces included, without hanging.
func TestCleanupDeletesOnlyWhatClusternetCreated(t *testing.T) {
	tests := []struct {
		name     string
		existing map[string]map[string]any
		objs     []map[string]any
		// rejectDelete is refused by a policy in the child.
		rejectDelete string
		want         []string
		wantReleased []string
		wantEvents   []string
	}{
		{
			name:         "pre-existing namespace with a team's data",
			existing:     map[string]map[string]any{nsMonitoring: teamNamespace("monitoring"), teamCM: configMapObj("monitoring", "team-data")},
			objs:         []map[string]any{namespaceObj("monitoring"), configMapObj("monitoring", "ours")},
			want:         []string{nsMonitoring, teamCM},
			wantReleased: []string{nsMonitoring},
			wantEvents: []string{
				"Normal LeftInChild Left Namespace monitoring in the child: it existed before Clusternet applied it; removed Clusternet's labels and annotations from it",
				"Normal DeletedFromChild Deleted the Description's objects from the child (2 listed)",
			},
		},
		{
			name: "namespace Clusternet created",
			objs: []map[string]any{namespaceObj("monitoring"), configMapObj("monitoring", "ours")},
			wantEvents: []string{
				"Normal DeletedFromChild Deleted the Description's objects from the child (2 listed)",
			},
		},
		{
			name:         "the default namespace",
			existing:     map[string]map[string]any{nsDefault: withMeta(namespaceObj("default"), map[string]any{"managedFields": []any{map[string]any{"manager": "kube-apiserver", "operation": "Update"}}})},
			objs:         []map[string]any{namespaceObj("default"), configMapObj("default", "ours")},
			want:         []string{nsDefault},
			wantReleased: []string{nsDefault},
			wantEvents: []string{
				"Normal LeftInChild Left Namespace default in the child: it is one of the child's system namespaces; removed Clusternet's labels and annotations from it",
				"Normal DeletedFromChild Deleted the Description's objects from the child (2 listed)",
			},
		},
		{
			name:         "a namespace Clusternet created that a policy keeps",
			objs:         []map[string]any{namespaceObj("monitoring"), configMapObj("monitoring", "ours")},
			rejectDelete: nsMonitoring,
			want:         []string{nsMonitoring},
			wantReleased: []string{nsMonitoring},
			wantEvents: []string{
				`Warning FailedDeletingFromChild The child refused to delete Namespace monitoring (namespaces "monitoring" is forbidden: this namespace may not be deleted); left it in the child without Clusternet's labels`,
				"Normal DeletedFromChild Deleted the Description's objects from the child (2 listed)",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newOwnershipEnv(t)
			for p, o := range tc.existing {
				e.fake.Put(p, o)
			}
			if tc.rejectDelete != "" {
				e.fake.RejectDelete(tc.rejectDelete)
			}
			d := e.deploy(description("app-demo-generic", tc.objs...))
			e.fake.TakeWrites()
			e.remove(d)
			if diff := cmp.Diff(tc.want, sortedPaths(e.fake)); diff != "" {
				t.Errorf("objects in the child after cleanup (-want +got):\n%s", diff)
			}
			for _, p := range tc.wantReleased {
				if problems := e.released(p); problems != "" {
					t.Errorf("%s still carries Clusternet's marks: %s", p, problems)
				}
			}
			for _, w := range e.fake.TakeWrites() {
				if memchild.ImmortalNamespace(strings.TrimPrefix(w, "DELETE /api/v1/namespaces/")) {
					t.Errorf("cleanup tried %s", w)
				}
			}
			if diff := cmp.Diff(tc.wantEvents, e.events()); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("team label and data stay", func(t *testing.T) {
		e := newOwnershipEnv(t)
		e.fake.Put(nsMonitoring, teamNamespace("monitoring"))
		e.fake.Put(teamCM, configMapObj("monitoring", "team-data"))
		e.remove(e.deploy(description("app-demo-generic", namespaceObj("monitoring"), configMapObj("monitoring", "ours"))))
		got := e.fake.Object(nsMonitoring)["metadata"].(map[string]any)["labels"]
		if diff := cmp.Diff(map[string]any{"team": "observability"}, got); diff != "" {
			t.Errorf("labels of the released namespace (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(configMapObj("monitoring", "team-data"), e.fake.Object(teamCM)); diff != "" {
			t.Errorf("the team's ConfigMap (-want +got):\n%s", diff)
		}
	})
}

// Two Descriptions ship the same Namespace: it is deleted only once
// neither lists it, whichever goes first and whichever applied last.
func TestCleanupSharedNamespace(t *testing.T) {
	cm1, cm2 := "/api/v1/namespaces/foo/configmaps/one", "/api/v1/namespaces/foo/configmaps/two"
	for _, order := range [][2]string{{"d1", "d2"}, {"d2", "d1"}} {
		t.Run(order[0]+" deleted first", func(t *testing.T) {
			e := newOwnershipEnv(t)
			descs := map[string]*appsv1alpha1.Description{
				"d1": e.deploy(description("d1", namespaceObj("foo"), configMapObj("foo", "one"))),
				"d2": e.deploy(description("d2", namespaceObj("foo"), configMapObj("foo", "two"))), // applied last: its labels
			}
			first, second := order[0], order[1]
			e.events()
			e.remove(descs[first])
			remaining := map[string][]string{"d1": {nsFoo, cm1}, "d2": {nsFoo, cm2}}[second]
			if diff := cmp.Diff(remaining, sortedPaths(e.fake)); diff != "" {
				t.Errorf("objects in the child after deleting %s (-want +got):\n%s", first, diff)
			}
			wantEvents := []string{
				"Normal LeftInChild Left Namespace foo in the child: Description " + second + " still lists it",
				"Normal DeletedFromChild Deleted the Description's objects from the child (2 listed)",
			}
			if diff := cmp.Diff(wantEvents, e.events()); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			// The one left applies again, taking the namespace over.
			if diff := cmp.Diff([]string{"clusternet-abcde/" + second}, e.queued()); diff != "" {
				t.Errorf("queued (-want +got):\n%s", diff)
			}
			e.remove(descs[second])
			if got := e.fake.Paths(); len(got) != 0 {
				t.Errorf("objects in the child after deleting both: %v", got)
			}
		})
	}
}

// Pruning follows the same rules; a namespace the child will not delete
// never fails the deploy.
func TestPruneOwnership(t *testing.T) {
	e := newOwnershipEnv(t)
	e.fake.Put(nsMonitoring, teamNamespace("monitoring"))
	e.fake.Put(teamCM, configMapObj("monitoring", "team-data"))
	e.fake.Put(nsDefault, namespaceObj("default"))
	e.fake.RejectDelete("/api/v1/namespaces/locked")
	d := e.deploy(description("app-demo-generic", namespaceObj("monitoring"), configMapObj("monitoring", "ours"),
		namespaceObj("default"), namespaceObj("foo"), namespaceObj("locked"), namespaceObj("kept")))
	e.deploy(description("other", namespaceObj("kept")))
	e.events()
	// Everything goes from the Description.
	pending, err := e.c.prune(context.Background(), e.w, d, PruneSet(d.Status.ManifestStatuses, nil))
	if err != nil || pending != nil {
		t.Fatalf("prune: %v (pending %v)", err, pending)
	}
	want := []string{nsDefault, "/api/v1/namespaces/kept", "/api/v1/namespaces/locked", nsMonitoring, teamCM}
	if diff := cmp.Diff(want, sortedPaths(e.fake)); diff != "" {
		t.Errorf("objects in the child after pruning (-want +got):\n%s", diff)
	}
	for _, p := range []string{nsDefault, nsMonitoring, "/api/v1/namespaces/locked"} {
		if problems := e.released(p); problems != "" {
			t.Errorf("%s still carries Clusternet's marks: %s", p, problems)
		}
	}
	wantEvents := []string{
		"Normal Pruned Deleted ConfigMap monitoring/ours from the child: no longer in the Description",
		"Normal Pruned Deleted Namespace foo from the child: no longer in the Description",
		"Normal LeftInChild Left Namespace default in the child: it is one of the child's system namespaces; removed Clusternet's labels and annotations from it",
		`Warning FailedDeletingFromChild The child refused to delete Namespace locked (namespaces "locked" is forbidden: this namespace may not be deleted); left it in the child without Clusternet's labels`,
		"Normal LeftInChild Left Namespace monitoring in the child: it existed before Clusternet applied it; removed Clusternet's labels and annotations from it",
		"Normal LeftInChild Left Namespace kept in the child: Description other still lists it",
	}
	got := e.events()
	slices.Sort(got)
	slices.Sort(wantEvents)
	if diff := cmp.Diff(wantEvents, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"clusternet-abcde/other"}, e.queued()); diff != "" {
		t.Errorf("queued (-want +got):\n%s", diff)
	}
}
