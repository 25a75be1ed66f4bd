package feedprotect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	clienttesting "k8s.io/client-go/testing"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned/fake"
	"github.com/clusternet/clusternet/pkg/generated/informers/externalversions"
)

// Fixtures.

// template is the Manifest the shadow API stores for template
// group/kind namespace/name with labels.
func template(apiVersion, kind, namespace, name string, labels map[string]string, finalizers ...string) *appsv1alpha1.Manifest {
	gv, _ := schema.ParseGroupVersion(apiVersion)
	md := map[string]any{"name": name}
	if namespace != "" {
		md["namespace"] = namespace
	}
	if labels != nil {
		md["labels"] = labels
	}
	raw, _ := json.Marshal(map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": md})
	ls := map[string]string{
		appsv1alpha1.LabelConfigGroup: gv.Group, appsv1alpha1.LabelConfigVersion: gv.Version,
		appsv1alpha1.LabelConfigKind: kind, appsv1alpha1.LabelConfigNamespace: namespace,
	}
	for k, v := range labels {
		ls[k] = v
	}
	return &appsv1alpha1.Manifest{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: appsv1alpha1.ReservedNamespace, Name: appsv1alpha1.ManifestName(gv.Group, kind, namespace, name),
			Labels: ls, Finalizers: finalizers, ResourceVersion: "1",
		},
		Template: runtime.RawExtension{Raw: raw},
	}
}

func deployment(namespace, name string, labels map[string]string, finalizers ...string) *appsv1alpha1.Manifest {
	return template("apps/v1", "Deployment", namespace, name, labels, finalizers...)
}

func chart(namespace, name string, labels map[string]string, finalizers ...string) *appsv1alpha1.HelmChart {
	return &appsv1alpha1.HelmChart{ObjectMeta: metav1.ObjectMeta{
		Namespace: namespace, Name: name, Labels: labels, Finalizers: finalizers, ResourceVersion: "1",
	}}
}

func subscription(namespace, name string, feeds ...appsv1alpha1.Feed) *appsv1alpha1.Subscription {
	return &appsv1alpha1.Subscription{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, UID: types.UID("uid-" + namespace + "-" + name)},
		Spec:       appsv1alpha1.SubscriptionSpec{Feeds: feeds},
	}
}

func deleting[T metav1.Object](obj T) T {
	now := metav1.Now()
	obj.SetDeletionTimestamp(&now)
	return obj
}

func named(apiVersion, kind, namespace, name string) appsv1alpha1.Feed {
	return appsv1alpha1.Feed{APIVersion: apiVersion, Kind: kind, Namespace: namespace, Name: name}
}

func selected(apiVersion, kind, namespace string, matchLabels map[string]string) appsv1alpha1.Feed {
	return appsv1alpha1.Feed{APIVersion: apiVersion, Kind: kind, Namespace: namespace, FeedSelector: &metav1.LabelSelector{MatchLabels: matchLabels}}
}

func namedChart(namespace, name string) appsv1alpha1.Feed {
	return named("apps.clusternet.io/v1alpha1", "HelmChart", namespace, name)
}

func selectedCharts(namespace string, matchLabels map[string]string) appsv1alpha1.Feed {
	return selected("apps.clusternet.io/v1alpha1", "HelmChart", namespace, matchLabels)
}

// newParent is the generated fake with the API server's finalizer rules in
// front: a delete of an object with finalizers only marks it, and the write
// removing the last finalizer of a marked object deletes it.
func newParent(objects ...runtime.Object) *fake.Clientset {
	cs := fake.NewClientset(objects...)
	tracker := cs.Tracker()
	objects2 := clienttesting.ObjectReaction(tracker)
	cs.PrependReactor("delete", "*", func(action clienttesting.Action) (bool, runtime.Object, error) {
		d := action.(clienttesting.DeleteAction)
		obj, err := tracker.Get(d.GetResource(), d.GetNamespace(), d.GetName())
		if err != nil {
			return true, nil, err
		}
		m, _ := meta.Accessor(obj)
		if len(m.GetFinalizers()) == 0 {
			return false, nil, nil
		}
		if m.GetDeletionTimestamp() == nil {
			now := metav1.Now()
			m.SetDeletionTimestamp(&now)
			return true, nil, tracker.Update(d.GetResource(), obj, d.GetNamespace())
		}
		return true, nil, nil
	})
	cs.PrependReactor("patch", "*", func(action clienttesting.Action) (bool, runtime.Object, error) {
		handled, obj, err := objects2(action)
		if err != nil {
			return handled, obj, err
		}
		if m, _ := meta.Accessor(obj); m.GetDeletionTimestamp() != nil && len(m.GetFinalizers()) == 0 {
			return true, obj, tracker.Delete(action.GetResource(), action.GetNamespace(), m.GetName())
		}
		return handled, obj, err
	})
	return cs
}

// recorder keeps events as "Kind namespace/name: Type Reason message".
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) Event(obj runtime.Object, eventtype, reason, message string) {
	m, _ := meta.Accessor(obj)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, fmt.Sprintf("%s %s/%s: %s %s %s", reflect.TypeOf(obj).Elem().Name(), m.GetNamespace(), m.GetName(), eventtype, reason, message))
}

func (r *recorder) Eventf(obj runtime.Object, eventtype, reason, format string, args ...any) {
	r.Event(obj, eventtype, reason, fmt.Sprintf(format, args...))
}

func (r *recorder) AnnotatedEventf(obj runtime.Object, _ map[string]string, eventtype, reason, format string, args ...any) {
	r.Eventf(obj, eventtype, reason, format, args...)
}

func (r *recorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// setUp builds the controller over a fake parent holding objects and waits
// for its caches; run starts its loops too.
func setUp(t *testing.T, run bool, objects ...runtime.Object) (*Controller, *fake.Clientset, *recorder) {
	t.Helper()
	cs := newParent(objects...)
	informers := externalversions.NewSharedInformerFactory(cs, 0)
	events := &recorder{}
	c, err := New(Options{Clusternet: cs, Informers: informers, Events: events})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() {
		cancel()
		<-done
		informers.Shutdown()
	})
	informers.Start(ctx.Done())
	for typ, ok := range informers.WaitForCacheSync(ctx.Done()) {
		if !ok {
			t.Fatalf("cache of %v did not sync", typ)
		}
	}
	go func() {
		defer close(done)
		if run {
			c.Run(ctx, 2)
		}
	}()
	return c, cs, events
}

// state is every Manifest's and HelmChart's feed-protection finalizer and
// annotation as the parent holds them, by object: "Deployment foo/web",
// "HelmChart foo/mysql" ("Manifest <namespace>/<name>" for one holding no
// template). Deleting objects are marked "(deleting)".
func state(t *testing.T, cs *fake.Clientset) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	describe := func(obj metav1.Object) string {
		s := strings.Join(obj.GetFinalizers(), ",")
		if note, ok := obj.GetAnnotations()[appsv1alpha1.AnnotationFeedProtection]; ok {
			s += " note=" + note
		}
		if obj.GetDeletionTimestamp() != nil {
			s += " (deleting)"
		}
		return s
	}
	ms, err := cs.AppsV1alpha1().Manifests(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range ms.Items {
		m := &ms.Items[i]
		key := "Manifest " + m.Namespace + "/" + m.Name
		var tmpl struct {
			Kind     string
			Metadata struct{ Namespace, Name string }
		}
		if json.Unmarshal(m.Template.Raw, &tmpl) == nil && m.Namespace == appsv1alpha1.ReservedNamespace {
			key = tmpl.Kind + " " + strings.TrimPrefix(tmpl.Metadata.Namespace+"/"+tmpl.Metadata.Name, "/")
		}
		out[key] = describe(m)
	}
	cs2, err := cs.AppsV1alpha1().HelmCharts(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range cs2.Items {
		out["HelmChart "+cs2.Items[i].Namespace+"/"+cs2.Items[i].Name] = describe(&cs2.Items[i])
	}
	return out
}

// syncAll syncs every Manifest and HelmChart once, in no loop.
func syncAll(t *testing.T, c *Controller, cs *fake.Clientset) {
	t.Helper()
	ctx := context.Background()
	ms, _ := c.manifests.List(labels.Everything())
	for _, m := range ms {
		if _, err := c.syncManifest(ctx, m.Namespace+"/"+m.Name); err != nil {
			t.Fatal(err)
		}
	}
	charts, _ := c.charts.List(labels.Everything())
	for _, ch := range charts {
		if _, err := c.syncChart(ctx, ch.Namespace+"/"+ch.Name); err != nil {
			t.Fatal(err)
		}
	}
}

// waitState polls the parent until state(cs) is want.
func waitState(t *testing.T, cs *fake.Clientset, what string, want map[string]string) {
	t.Helper()
	var got map[string]string
	err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		got = state(t, cs)
		return cmp.Equal(want, got), nil
	})
	if err != nil {
		t.Fatalf("%s: (-want +got):\n%s", what, cmp.Diff(want, got))
	}
}

// waitEvents polls until the events recorded are want: the controller
// records them just after the write that waitState sees.
func waitEvents(t *testing.T, r *recorder, want []string) {
	t.Helper()
	var got []string
	err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		got = r.all()
		return cmp.Equal(want, got), nil
	})
	if err != nil {
		t.Fatalf("events (-want +got):\n%s", cmp.Diff(want, got))
	}
}

const fin = appsv1alpha1.FeedProtectionFinalizer

var web = map[string]string{"app": "web"}

func TestFinalizerFollowsUse(t *testing.T) {
	chartPlusOther := chart("foo", "mysql", nil, "example.com/keep", fin)
	tests := []struct {
		name    string
		objects []runtime.Object
		want    map[string]string
	}{
		{
			name: "a template the Subscription names in its namespace",
			objects: []runtime.Object{
				subscription("foo", "app", named("apps/v1", "Deployment", "foo", "web")),
				deployment("foo", "web", nil), deployment("foo", "other", nil),
			},
			want: map[string]string{"Deployment foo/web": fin, "Deployment foo/other": ""},
		},
		{
			name: "a feedSelector: the templates it matches in the Subscription's namespace",
			objects: []runtime.Object{
				subscription("foo", "app", selected("apps/v1", "Deployment", "", web)),
				deployment("foo", "a", web), deployment("foo", "b", map[string]string{"app": "db"}), deployment("bar", "c", web),
			},
			want: map[string]string{"Deployment foo/a": fin, "Deployment foo/b": "", "Deployment bar/c": ""},
		},
		{
			name: "HelmCharts named and selected",
			objects: []runtime.Object{
				subscription("foo", "app", namedChart("foo", "mysql"), selectedCharts("", map[string]string{"tier": "cache"})),
				chart("foo", "mysql", nil), chart("foo", "redis", map[string]string{"tier": "cache"}), chart("foo", "other", nil),
			},
			want: map[string]string{"HelmChart foo/mysql": fin, "HelmChart foo/redis": fin, "HelmChart foo/other": ""},
		},
		{
			// The security boundary: bar's Subscriptions may name foo's
			// objects (and distribute them, if their author may read them),
			// but never hold their deletion.
			name: "another namespace's Subscription does not hold, by name or by selector",
			objects: []runtime.Object{
				subscription("bar", "thief", named("apps/v1", "Deployment", "foo", "web"), namedChart("foo", "mysql"),
					selected("apps/v1", "Deployment", "", web), selectedCharts("foo", web)),
				deployment("foo", "web", web), chart("foo", "mysql", web),
			},
			want: map[string]string{"Deployment foo/web": "", "HelmChart foo/mysql": ""},
		},
		{
			name: "the last user gone: the finalizer comes off, other finalizers stay",
			objects: []runtime.Object{
				deployment("foo", "web", nil, fin), chartPlusOther,
			},
			want: map[string]string{"Deployment foo/web": "", "HelmChart foo/mysql": "example.com/keep"},
		},
		{
			name: "a Subscription being deleted holds nothing",
			objects: []runtime.Object{
				deleting(subscription("foo", "app", named("apps/v1", "Deployment", "foo", "web"))),
				deployment("foo", "web", nil, fin),
			},
			want: map[string]string{"Deployment foo/web": ""},
		},
		{
			name: "feeds that do not resolve to it: another kind, another group, both name and selector, a bad selector",
			objects: []runtime.Object{
				subscription("foo", "app",
					named("v1", "ConfigMap", "foo", "web"),
					named("example.com/v1", "Deployment", "foo", "web"),
					appsv1alpha1.Feed{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "foo", Name: "web", FeedSelector: &metav1.LabelSelector{}},
					appsv1alpha1.Feed{APIVersion: "apps/v1", Kind: "Deployment", FeedSelector: &metav1.LabelSelector{
						MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Bogus"}}}},
				),
				deployment("foo", "web", web),
			},
			want: map[string]string{"Deployment foo/web": ""},
		},
		{
			name: "a cluster-scoped template is held by no Subscription",
			objects: []runtime.Object{
				subscription("foo", "app", named("v1", "Namespace", "", "foo")),
				template("v1", "Namespace", "", "foo", nil),
			},
			want: map[string]string{"Namespace foo": ""},
		},
		{
			name: "a Manifest holding a template under another template's name",
			objects: []runtime.Object{
				subscription("foo", "app", named("apps/v1", "Deployment", "foo", "web"), named("apps/v1", "Deployment", "foo", "evil")),
				func() *appsv1alpha1.Manifest {
					m := deployment("foo", "evil", nil)
					m.Name = appsv1alpha1.ManifestName("apps", "Deployment", "foo", "web")
					return m
				}(),
			},
			want: map[string]string{"Deployment foo/evil": ""},
		},
		{
			name: "a Manifest outside the reserved namespace is no template",
			objects: []runtime.Object{
				subscription("foo", "app", named("apps/v1", "Deployment", "foo", "web")),
				func() *appsv1alpha1.Manifest {
					m := deployment("foo", "web", nil)
					m.Namespace = "foo"
					return m
				}(),
			},
			want: map[string]string{"Manifest foo/" + appsv1alpha1.ManifestName("apps", "Deployment", "foo", "web"): ""},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, cs, events := setUp(t, false, tc.objects...)
			syncAll(t, c, cs)
			if diff := cmp.Diff(tc.want, state(t, cs)); diff != "" {
				t.Errorf("finalizers (-want +got):\n%s", diff)
			}
			if got := events.all(); len(got) > 0 {
				t.Errorf("events about objects not being deleted: %q", got)
			}
		})
	}
}

// heldBy is the note and event on an object whose deletion is held.
func heldBy(what string, holders ...string) string {
	return what + " is being deleted, and FeedInUseProtection holds it while Subscriptions use it as a feed: " +
		strings.Join(holders, ", ") + "; remove it from their spec.feeds or delete them, and the deletion completes"
}

// holding is the event on a Subscription holding a deletion.
func holding(what, feeds string) string {
	return what + " is being deleted, and FeedInUseProtection holds it while this Subscription uses it (" + feeds + "): " +
		"remove it from spec.feeds (drop the feed, or narrow its feedSelector) or delete this Subscription, and the deletion completes; until then it is still distributed"
}

func TestDeletionHeldWhileUsed(t *testing.T) {
	ctx := context.Background()
	app := subscription("foo", "app", named("apps/v1", "Deployment", "foo", "web"), namedChart("foo", "mysql"))
	other := subscription("foo", "other", selected("apps/v1", "Deployment", "foo", web))
	_, cs, events := setUp(t, true, app, other, deployment("foo", "web", web), chart("foo", "mysql", nil),
		subscription("bar", "thief", named("apps/v1", "Deployment", "foo", "web"), namedChart("foo", "mysql")))
	waitState(t, cs, "in use: protected", map[string]string{"Deployment foo/web": fin, "HelmChart foo/mysql": fin})

	tmplWhat := `the template of apps/v1 Deployment "foo/web"`
	manifestName := appsv1alpha1.ManifestName("apps", "Deployment", "foo", "web")
	if err := cs.AppsV1alpha1().Manifests(appsv1alpha1.ReservedNamespace).Delete(ctx, manifestName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	held := heldBy(tmplWhat, "Subscription foo/app (spec.feeds[0])", "Subscription foo/other (spec.feeds[0])")
	waitState(t, cs, "the template's deletion held by both", map[string]string{
		"Deployment foo/web": fin + " note=" + held + " (deleting)", "HelmChart foo/mysql": fin,
	})
	wantEvents := []string{
		"Manifest clusternet-reserved/" + manifestName + ": Warning FeedInUse " + held,
		"Subscription foo/app: Warning FeedInUse " + holding(tmplWhat, "spec.feeds[0]"),
		"Subscription foo/other: Warning FeedInUse " + holding(tmplWhat, "spec.feeds[0]"),
	}
	waitEvents(t, events, wantEvents)

	// app drops the template; other still selects it.
	app = app.DeepCopy()
	app.Spec.Feeds = app.Spec.Feeds[1:]
	if _, err := cs.AppsV1alpha1().Subscriptions("foo").Update(ctx, app, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	heldByOther := heldBy(tmplWhat, "Subscription foo/other (spec.feeds[0])")
	waitState(t, cs, "held by the one left", map[string]string{
		"Deployment foo/web": fin + " note=" + heldByOther + " (deleting)", "HelmChart foo/mysql": fin,
	})
	// other's selector no longer matches it: released, and gone.
	other = other.DeepCopy()
	other.Spec.Feeds[0].FeedSelector.MatchLabels = map[string]string{"app": "db"}
	if _, err := cs.AppsV1alpha1().Subscriptions("foo").Update(ctx, other, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitState(t, cs, "released: the template is gone", map[string]string{"HelmChart foo/mysql": fin})

	// The HelmChart: held until app, its only user, is deleted.
	if err := cs.AppsV1alpha1().HelmCharts("foo").Delete(ctx, "mysql", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	chartHeld := heldBy("HelmChart foo/mysql", "Subscription foo/app (spec.feeds[0])")
	waitState(t, cs, "the HelmChart's deletion held", map[string]string{"HelmChart foo/mysql": fin + " note=" + chartHeld + " (deleting)"})
	if err := cs.AppsV1alpha1().Subscriptions("foo").Delete(ctx, "app", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitState(t, cs, "released: the HelmChart is gone", map[string]string{})

	wantEvents = append(wantEvents,
		"Manifest clusternet-reserved/"+manifestName+": Warning FeedInUse "+heldByOther,
		"Subscription foo/other: Warning FeedInUse "+holding(tmplWhat, "spec.feeds[0]"),
		"HelmChart foo/mysql: Warning FeedInUse "+chartHeld,
		"Subscription foo/app: Warning FeedInUse "+holding("HelmChart foo/mysql", "spec.feeds[0]"),
	)
	waitEvents(t, events, wantEvents)
}

func TestLastUserGone(t *testing.T) {
	ctx := context.Background()
	_, cs, _ := setUp(t, true, subscription("foo", "app", selected("apps/v1", "Deployment", "", web), selectedCharts("", web)),
		deployment("foo", "web", web), chart("foo", "mysql", web))
	waitState(t, cs, "in use: protected", map[string]string{"Deployment foo/web": fin, "HelmChart foo/mysql": fin})
	if err := cs.AppsV1alpha1().Subscriptions("foo").Delete(ctx, "app", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitState(t, cs, "unused: unprotected, and still there", map[string]string{"Deployment foo/web": "", "HelmChart foo/mysql": ""})
}

// pageLists makes cs's lists of resources with a Limit page as the API
// server does: at most the Limit asked (and never more than most, so that a
// few objects take several pages; a real server may return fewer), with a
// Continue token while more remain. It says how many lists it has seen by
// resource, as "<resource>" for pages and "<resource> unpaged" for lists
// without a Limit (answered whole).
func pageLists(cs *fake.Clientset, most int, resources ...string) func() map[string]int {
	var mu sync.Mutex
	lists := map[string]int{}
	tracker := cs.Tracker()
	for _, resource := range resources {
		cs.PrependReactor("list", resource, func(action clienttesting.Action) (bool, runtime.Object, error) {
			l := action.(clienttesting.ListActionImpl)
			if l.ListOptions.Limit <= 0 {
				mu.Lock()
				lists[resource+" unpaged"]++
				mu.Unlock()
				return false, nil, nil
			}
			all, err := tracker.List(l.GetResource(), l.GetKind(), l.GetNamespace())
			if err != nil {
				return true, nil, err
			}
			items, err := meta.ExtractList(all)
			if err != nil {
				return true, nil, err
			}
			key := func(o runtime.Object) string {
				m, _ := meta.Accessor(o)
				return m.GetNamespace() + "/" + m.GetName()
			}
			slices.SortFunc(items, func(a, b runtime.Object) int { return strings.Compare(key(a), key(b)) })
			// The token is the key of the last object returned.
			from := 0
			if l.ListOptions.Continue != "" {
				from = slices.IndexFunc(items, func(o runtime.Object) bool { return key(o) > l.ListOptions.Continue })
				if from < 0 {
					from = len(items)
				}
			}
			n := min(int(l.ListOptions.Limit), most)
			page := items[from:min(from+n, len(items))]
			if err := meta.SetList(all, page); err != nil {
				return true, nil, err
			}
			lm, _ := meta.ListAccessor(all)
			lm.SetContinue("")
			if from+len(page) < len(items) {
				lm.SetContinue(key(page[len(page)-1]))
			}
			mu.Lock()
			lists[resource]++
			mu.Unlock()
			return true, all, nil
		})
	}
	return func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(lists)
	}
}

// conflictOnce puts the API server's optimistic concurrency in front of
// cs's patches, and a writer racing the first patch of object
// namespace/name of resource: just before it, that writer adds finalizer
// example.com/late and moves the object's resourceVersion on, so the patch,
// made from an earlier read, gets a Conflict. A patch whose
// metadata.resourceVersion is not the stored one fails with a Conflict; one
// without fails t (the precondition is what keeps the writer's finalizer).
// A patch that passes leaves the resourceVersion as it was (the fake does
// not move it on), which is enough for a sweep that writes each object once
// per list. It says how many Conflicts it returned.
func conflictOnce(t *testing.T, cs *fake.Clientset, resource, namespace, name string) func() int {
	t.Helper()
	var mu sync.Mutex
	raced, conflicts := false, 0
	tracker := cs.Tracker()
	cs.PrependReactor("patch", "*", func(action clienttesting.Action) (bool, runtime.Object, error) {
		p := action.(clienttesting.PatchActionImpl)
		var patch struct {
			Metadata struct {
				ResourceVersion string `json:"resourceVersion"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal(p.GetPatch(), &patch); err != nil {
			return true, nil, err
		}
		if patch.Metadata.ResourceVersion == "" {
			t.Errorf("a patch of %s %s/%s without a resourceVersion precondition: %s", p.GetResource().Resource, p.GetNamespace(), p.GetName(), p.GetPatch())
		}
		obj, err := tracker.Get(p.GetResource(), p.GetNamespace(), p.GetName())
		if err != nil {
			return true, nil, err
		}
		m, _ := meta.Accessor(obj)
		mu.Lock()
		defer mu.Unlock()
		if !raced && p.GetResource().Resource == resource && p.GetNamespace() == namespace && p.GetName() == name {
			raced = true
			m.SetFinalizers(append(m.GetFinalizers(), "example.com/late"))
			m.SetResourceVersion(m.GetResourceVersion() + "0")
			if err := tracker.Update(p.GetResource(), obj, p.GetNamespace()); err != nil {
				return true, nil, err
			}
		}
		if patch.Metadata.ResourceVersion != "" && patch.Metadata.ResourceVersion != m.GetResourceVersion() {
			conflicts++
			return true, nil, apierrors.NewConflict(p.GetResource().GroupResource(), p.GetName(),
				errors.New("the object has been modified; please apply your changes to the latest version and try again"))
		}
		return false, nil, nil // the patch applies
	})
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		return conflicts
	}
}

func TestReleaseAll(t *testing.T) {
	outside := deployment("foo", "web", nil, fin)
	outside.Namespace = "foo"
	held := deleting(deployment("foo", "held", nil, fin))
	held.Annotations = map[string]string{appsv1alpha1.AnnotationFeedProtection: "held"}
	cs := newParent(
		deployment("foo", "a", nil, fin), deployment("foo", "b", nil), deployment("foo", "c", nil, fin),
		deployment("foo", "web", nil, fin), held, outside,
		chart("foo", "mysql", nil, "example.com/keep", fin), chart("foo", "plain", nil), chart("foo", "redis", nil, fin),
		// A Subscription still using them: with the gate off, it holds nothing.
		subscription("foo", "app", named("apps/v1", "Deployment", "foo", "web"), namedChart("foo", "mysql")),
	)
	// Five templates and three HelmCharts, two to a page: every list
	// takes several pages, and the race is on foo/web, on the last.
	lists := pageLists(cs, 2, "manifests", "helmcharts")
	conflicts := conflictOnce(t, cs, "manifests", appsv1alpha1.ReservedNamespace, appsv1alpha1.ManifestName("apps", "Deployment", "foo", "web"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ReleaseAll(ctx, cs)
	if ctx.Err() != nil {
		t.Error("ReleaseAll returned only when its context ended")
	}
	// The first sweep: 5 templates in pages of 2, the Conflict on the
	// third. The second: the 4 left (foo/held's deletion completed) in
	// two, then 3 HelmCharts in two. Nothing read whole.
	if diff := cmp.Diff(map[string]int{"manifests": 2 + 3, "helmcharts": 2}, lists()); diff != "" {
		t.Errorf("lists of the sweeps (-want +got):\n%s", diff)
	}
	if got := conflicts(); got != 1 {
		t.Errorf("the racing write caused %d Conflicts, want 1", got)
	}
	want := map[string]string{
		"Deployment foo/a":   "",
		"Deployment foo/b":   "",
		"Deployment foo/c":   "",
		"Deployment foo/web": "example.com/late", // the racing writer's, kept
		// foo/held: released, its deletion completed.
		"Manifest foo/" + outside.Name: fin, // not a template: never the hub's
		"HelmChart foo/mysql":          "example.com/keep",
		"HelmChart foo/plain":          "",
		"HelmChart foo/redis":          "",
	}
	if diff := cmp.Diff(want, state(t, cs)); diff != "" {
		t.Errorf("after the sweep (-want +got):\n%s", diff)
	}
}
