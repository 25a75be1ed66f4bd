package admission

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

// grant is one RBAC-like rule: namespace "*" covers every namespace and
// cluster-scoped requests; a namespace covers only requests in it; name ""
// covers every name and lists, a name only gets of that name.
type grant struct {
	user, verb, group, resource, namespace, name string
}

func (g grant) covers(user string, a *authorizationv1.ResourceAttributes) bool {
	return g.user == user && g.verb == a.Verb && g.group == a.Group && g.resource == a.Resource &&
		(g.namespace == "*" || g.namespace == a.Namespace && a.Namespace != "") &&
		(g.name == "" || g.name == a.Name)
}

// fakeParent answers SubjectAccessReviews from grants and records them.
type fakeParent struct {
	grants []grant
	fail   error

	mu   sync.Mutex
	sars []authorizationv1.SubjectAccessReviewSpec
}

func (p *fakeParent) client() *fake.Clientset {
	cs := fake.NewClientset()
	cs.PrependReactor("create", "subjectaccessreviews", func(action k8stesting.Action) (bool, runtime.Object, error) {
		sar := action.(k8stesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview).DeepCopy()
		p.mu.Lock()
		p.sars = append(p.sars, sar.Spec)
		p.mu.Unlock()
		if p.fail != nil {
			return true, nil, p.fail
		}
		sar.Status.Allowed = slices.ContainsFunc(p.grants, func(g grant) bool { return g.covers(sar.Spec.User, sar.Spec.ResourceAttributes) })
		return true, sar, nil
	})
	return cs
}

// asked lists the reviews made, as "verb group/resource namespace/name", sorted.
func (p *fakeParent) asked() []string {
	var out []string
	for _, s := range p.sars {
		a := s.ResourceAttributes
		out = append(out, fmt.Sprintf("%s %s/%s %s/%s", a.Verb, a.Group, a.Resource, a.Namespace, a.Name))
	}
	slices.Sort(out)
	return out
}

// resettingMapper knows its kinds only after Reset, as a cached discovery
// that has not seen a new CRD yet.
type resettingMapper struct {
	meta.RESTMapper
	later  func()
	resets int
}

func (m *resettingMapper) Reset() {
	m.resets++
	if m.later != nil {
		m.later()
		m.later = nil
	}
}

func newMapper() *meta.DefaultRESTMapper {
	m := meta.NewDefaultRESTMapper(nil)
	m.Add(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, meta.RESTScopeNamespace)
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "Secret"}, meta.RESTScopeNamespace)
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "Service"}, meta.RESTScopeNamespace)
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "Namespace"}, meta.RESTScopeRoot)
	m.Add(schema.GroupVersionKind{Group: "autoscaling", Version: "v2", Kind: "HorizontalPodAutoscaler"}, meta.RESTScopeNamespace)
	return m
}

type fakeCharts []appsv1alpha1.HelmChart

func (c fakeCharts) Get(_ context.Context, namespace, name string) (*appsv1alpha1.HelmChart, error) {
	for i := range c {
		if c[i].Namespace == namespace && c[i].Name == name {
			return &c[i], nil
		}
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Group: appsv1alpha1.GroupName, Resource: "helmcharts"}, name)
}

func (c fakeCharts) List(_ context.Context, namespace string, sel labels.Selector) ([]appsv1alpha1.HelmChart, error) {
	var out []appsv1alpha1.HelmChart
	for _, ch := range c {
		if (namespace == "" || ch.Namespace == namespace) && sel.Matches(labels.Set(ch.Labels)) {
			out = append(out, ch)
		}
	}
	return out, nil
}

func chart(namespace, name, pullSecret string, lbls map[string]string) appsv1alpha1.HelmChart {
	c := appsv1alpha1.HelmChart{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: lbls}}
	if pullSecret != "" {
		c.Spec.ChartPullSecret = &appsv1alpha1.SecretReference{Name: pullSecret}
	}
	return c
}

func named(apiVersion, kind, namespace, name string) appsv1alpha1.Feed {
	return appsv1alpha1.Feed{APIVersion: apiVersion, Kind: kind, Namespace: namespace, Name: name}
}

func selected(apiVersion, kind, namespace string, lbls map[string]string) appsv1alpha1.Feed {
	return appsv1alpha1.Feed{APIVersion: apiVersion, Kind: kind, Namespace: namespace, FeedSelector: &metav1.LabelSelector{MatchLabels: lbls}}
}

func subscription(fs ...appsv1alpha1.Feed) *appsv1alpha1.Subscription {
	return &appsv1alpha1.Subscription{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "s"}, Spec: appsv1alpha1.SubscriptionSpec{Feeds: fs}}
}

// editInTeamA is what ClusterRole edit (with deploy/hub/rbac.yaml's shadow
// aggregation) gives alice by a RoleBinding in team-a, for the kinds here.
func editInTeamA() []grant {
	var gs []grant
	for _, r := range []struct{ group, resource string }{{"apps", "deployments"}, {"", "secrets"}, {"", "services"},
		{"shadow", "deployments"}, {"shadow", "secrets"}, {"shadow", "services"}, {appsv1alpha1.GroupName, "helmcharts"}} {
		for _, v := range []string{"get", "list"} {
			gs = append(gs, grant{"alice", v, r.group, r.resource, "team-a", ""})
		}
	}
	return gs
}

// everything is a cluster-admin's.
func everything(user string) []grant {
	var gs []grant
	for _, r := range []struct{ group, resource string }{{"apps", "deployments"}, {"", "secrets"}, {"", "services"}, {"", "namespaces"},
		{"shadow", "deployments"}, {"shadow", "secrets"}, {"shadow", "services"}, {"shadow", "namespaces"}, {appsv1alpha1.GroupName, "helmcharts"}, {"apps", "services"}, {"shadow", "services"}} {
		for _, v := range []string{"get", "list"} {
			gs = append(gs, grant{user, v, r.group, r.resource, "*", ""})
		}
	}
	return gs
}

const rule = "a Subscription may only name what its author may read"

func TestCheck(t *testing.T) {
	alice := authenticationv1.UserInfo{Username: "alice"}
	charts := fakeCharts{
		chart("team-a", "web", "repo-creds", map[string]string{"app": "web"}),
		chart("team-a", "open", "", map[string]string{"app": "web"}),
		chart("team-b", "db", "b-creds", nil),
	}
	for _, tc := range []struct {
		name     string
		grants   []grant
		user     authenticationv1.UserInfo
		feeds    []appsv1alpha1.Feed
		realKind bool
		// want are the refusals; asked, the reviews made.
		want  []string
		asked []string
	}{{
		name: "another namespace's Secret template is refused: both the template and the real Secret are missing",
		user: alice, grants: editInTeamA(), realKind: true,
		feeds: []appsv1alpha1.Feed{named("apps/v1", "Deployment", "team-a", "web"), named("v1", "Secret", "team-b", "db")},
		want: []string{
			`spec.feeds[1]: Forbidden: user "alice" may not get secrets.shadow "db" in namespace "team-b" (the template of v1 Secret "team-b/db"): ` + rule + `: ask for get on secrets.shadow "db" in namespace "team-b", or remove the feed`,
			`spec.feeds[1]: Forbidden: user "alice" may not get secrets "db" in namespace "team-b" (a template needs the permission its real object needs: v1 Secret "team-b/db"): ` + rule + `: ask for get on secrets "db" in namespace "team-b", or remove the feed`,
		},
		asked: []string{"get /secrets team-b/db", "get apps/deployments team-a/web", "get shadow/deployments team-a/web", "get shadow/secrets team-b/db"},
	}, {
		name: "the same Subscription by an admin is accepted",
		user: authenticationv1.UserInfo{Username: "admin"}, grants: everything("admin"), realKind: true,
		feeds: []appsv1alpha1.Feed{named("apps/v1", "Deployment", "team-a", "web"), named("v1", "Secret", "team-b", "db")},
		asked: []string{"get /secrets team-b/db", "get apps/deployments team-a/web", "get shadow/deployments team-a/web", "get shadow/secrets team-b/db"},
	}, {
		name: "a template readable in the shadow API but not as the real kind is refused (a viewer reads Secret templates, not Secrets)",
		user: alice, realKind: true,
		grants: []grant{{"alice", "get", "shadow", "secrets", "team-a", ""}},
		feeds:  []appsv1alpha1.Feed{named("v1", "Secret", "team-a", "db")},
		want: []string{
			`spec.feeds[0]: Forbidden: user "alice" may not get secrets "db" in namespace "team-a" (a template needs the permission its real object needs: v1 Secret "team-a/db"): ` + rule + `: ask for get on secrets "db" in namespace "team-a", or remove the feed`,
		},
		asked: []string{"get /secrets team-a/db", "get shadow/secrets team-a/db"},
	}, {
		name: "without --shadow-authorize-real-kind the shadow API's permission alone counts",
		user: alice, realKind: false,
		grants: []grant{{"alice", "get", "shadow", "secrets", "team-a", ""}},
		feeds:  []appsv1alpha1.Feed{named("v1", "Secret", "team-a", "db")},
		asked:  []string{"get shadow/secrets team-a/db"},
	}, {
		name: "a feedSelector without a namespace needs list everywhere",
		user: alice, grants: editInTeamA(), realKind: true,
		feeds: []appsv1alpha1.Feed{selected("apps/v1", "Deployment", "", map[string]string{"app": "web"})},
		want: []string{
			`spec.feeds[0]: Forbidden: user "alice" may not list deployments.shadow cluster-wide (the templates of the feedSelector over apps/v1 Deployment): ` + rule + `: ask for list on deployments.shadow cluster-wide, or remove the feed`,
			`spec.feeds[0]: Forbidden: user "alice" may not list deployments.apps cluster-wide (a template needs the permission its real object needs: the feedSelector over apps/v1 Deployment): ` + rule + `: ask for list on deployments.apps cluster-wide, or remove the feed`,
		},
		asked: []string{"list apps/deployments /", "list shadow/deployments /"},
	}, {
		name: "a feedSelector in the author's namespace is accepted",
		user: alice, grants: editInTeamA(), realKind: true,
		feeds: []appsv1alpha1.Feed{selected("apps/v1", "Deployment", "team-a", map[string]string{"app": "web"})},
		asked: []string{"list apps/deployments team-a/", "list shadow/deployments team-a/"},
	}, {
		name: "a cluster-scoped kind is checked cluster-wide, whatever namespace the feed writes",
		user: alice, realKind: true,
		grants: []grant{{"alice", "get", "", "namespaces", "team-a", ""}, {"alice", "get", "shadow", "namespaces", "team-a", ""}},
		feeds:  []appsv1alpha1.Feed{named("v1", "Namespace", "team-a", "team-b")},
		want: []string{
			`spec.feeds[0]: Forbidden: user "alice" may not get namespaces.shadow "team-b" cluster-wide (the template of v1 Namespace "team-a/team-b"): ` + rule + `: ask for get on namespaces.shadow "team-b" cluster-wide, or remove the feed`,
			`spec.feeds[0]: Forbidden: user "alice" may not get namespaces "team-b" cluster-wide (a template needs the permission its real object needs: v1 Namespace "team-a/team-b"): ` + rule + `: ask for get on namespaces "team-b" cluster-wide, or remove the feed`,
		},
		asked: []string{"get /namespaces /team-b", "get shadow/namespaces /team-b"},
	}, {
		name: "a kind served in another version is checked as that resource",
		user: alice, realKind: true,
		grants: []grant{{"alice", "get", "autoscaling", "horizontalpodautoscalers", "team-a", ""}, {"alice", "get", "shadow", "horizontalpodautoscalers", "team-a", ""}},
		feeds:  []appsv1alpha1.Feed{named("autoscaling/v1", "HorizontalPodAutoscaler", "team-a", "web")},
		asked:  []string{"get autoscaling/horizontalpodautoscalers team-a/web", "get shadow/horizontalpodautoscalers team-a/web"},
	}, {
		name: "a kind the parent does not serve (the seed's apps/v1 Service) is checked under its guessed resource",
		user: authenticationv1.UserInfo{Username: "admin"}, grants: everything("admin"), realKind: true,
		feeds: []appsv1alpha1.Feed{named("apps/v1", "Service", "foo", "web")},
		asked: []string{"get apps/services foo/web", "get shadow/services foo/web"},
	}, {
		name: "a kind the parent does not serve is refused to whoever may not read it",
		user: alice, grants: editInTeamA(), realKind: false,
		feeds: []appsv1alpha1.Feed{named("example.com/v1", "Widget", "team-b", "w")},
		want: []string{
			`spec.feeds[0]: Forbidden: user "alice" may not get widgets.shadow "w" in namespace "team-b" (the template of example.com/v1 Widget "team-b/w", a kind the parent does not serve: checked as resource "widgets"): ` + rule + `: ask for get on widgets.shadow "w" in namespace "team-b", or remove the feed`,
		},
		asked: []string{"get shadow/widgets team-b/w"},
	}, {
		name: "Clusternet's own kinds are never distributed and need nothing",
		user: alice, realKind: true,
		feeds: []appsv1alpha1.Feed{named("apps.clusternet.io/v1alpha1", "Subscription", "team-b", "s")},
	}, {
		name: "an apiVersion that does not parse is refused",
		user: alice, grants: editInTeamA(), realKind: true,
		feeds: []appsv1alpha1.Feed{named("a/b/c", "Deployment", "team-a", "web")},
		want: []string{
			`spec.feeds[0].apiVersion: Invalid value: "a/b/c": does not parse (unexpected GroupVersion string: a/b/c), so who may read the feed cannot be checked: write it as <group>/<version>, or v1 for the core group`,
		},
	}, {
		name: "a HelmChart's pull Secret needs get too",
		user: alice, realKind: true,
		grants: []grant{{"alice", "get", appsv1alpha1.GroupName, "helmcharts", "team-a", ""}},
		feeds:  []appsv1alpha1.Feed{named("apps.clusternet.io/v1alpha1", "HelmChart", "team-a", "web"), named("apps.clusternet.io/v1alpha1", "HelmChart", "team-a", "open")},
		want: []string{
			`spec.feeds[0]: Forbidden: user "alice" may not get secrets "repo-creds" in namespace "team-a" (the chart pull Secret of HelmChart team-a/web, which its clusters receive): ` + rule + `: ask for get on secrets "repo-creds" in namespace "team-a", or remove the feed`,
		},
		asked: []string{"get /secrets team-a/repo-creds", "get apps.clusternet.io/helmcharts team-a/open", "get apps.clusternet.io/helmcharts team-a/web"},
	}, {
		name: "a HelmChart the author may not read is refused, without naming its pull Secret",
		user: alice, grants: editInTeamA(), realKind: true,
		feeds: []appsv1alpha1.Feed{named("apps.clusternet.io/v1alpha1", "HelmChart", "team-b", "db")},
		want: []string{
			`spec.feeds[0]: Forbidden: user "alice" may not get helmcharts.apps.clusternet.io "db" in namespace "team-b" (apps.clusternet.io/v1alpha1 HelmChart "team-b/db"): ` + rule + `: ask for get on helmcharts.apps.clusternet.io "db" in namespace "team-b", or remove the feed`,
		},
		asked: []string{"get /secrets team-b/b-creds", "get apps.clusternet.io/helmcharts team-b/db"},
	}, {
		name: "a HelmChart that does not exist yet needs get on it",
		user: alice, grants: editInTeamA(), realKind: true,
		feeds: []appsv1alpha1.Feed{named("apps.clusternet.io/v1alpha1", "HelmChart", "team-a", "later")},
		asked: []string{"get apps.clusternet.io/helmcharts team-a/later"},
	}, {
		name: "a feedSelector over HelmCharts needs list and the pull Secret of each chart it matches",
		user: alice, realKind: true,
		grants: []grant{{"alice", "list", appsv1alpha1.GroupName, "helmcharts", "*", ""}},
		feeds:  []appsv1alpha1.Feed{selected("apps.clusternet.io/v1alpha1", "HelmChart", "", map[string]string{"app": "web"})},
		want: []string{
			`spec.feeds[0]: Forbidden: user "alice" may not get secrets "repo-creds" in namespace "team-a" (the chart pull Secret of HelmChart team-a/web, which its clusters receive): ` + rule + `: ask for get on secrets "repo-creds" in namespace "team-a", or remove the feed`,
		},
		asked: []string{"get /secrets team-a/repo-creds", "list apps.clusternet.io/helmcharts /"},
	}, {
		name: "one review per distinct permission, however many feeds need it",
		user: alice, grants: editInTeamA(), realKind: true,
		feeds: []appsv1alpha1.Feed{named("apps/v1", "Deployment", "team-a", "web"), named("apps/v1", "Deployment", "team-a", "web"),
			named("apps/v1", "Deployment", "team-b", "web"), named("apps/v1", "Deployment", "team-b", "web")},
		want: []string{
			`spec.feeds[2]: Forbidden: user "alice" may not get deployments.shadow "web" in namespace "team-b" (the template of apps/v1 Deployment "team-b/web"): ` + rule + `: ask for get on deployments.shadow "web" in namespace "team-b", or remove the feed`,
			`spec.feeds[2]: Forbidden: user "alice" may not get deployments.apps "web" in namespace "team-b" (a template needs the permission its real object needs: apps/v1 Deployment "team-b/web"): ` + rule + `: ask for get on deployments.apps "web" in namespace "team-b", or remove the feed`,
			`spec.feeds[3]: Forbidden: user "alice" may not get deployments.shadow "web" in namespace "team-b" (the template of apps/v1 Deployment "team-b/web"): ` + rule + `: ask for get on deployments.shadow "web" in namespace "team-b", or remove the feed`,
			`spec.feeds[3]: Forbidden: user "alice" may not get deployments.apps "web" in namespace "team-b" (a template needs the permission its real object needs: apps/v1 Deployment "team-b/web"): ` + rule + `: ask for get on deployments.apps "web" in namespace "team-b", or remove the feed`,
		},
		asked: []string{"get apps/deployments team-a/web", "get apps/deployments team-b/web", "get shadow/deployments team-a/web", "get shadow/deployments team-b/web"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			p := &fakeParent{grants: tc.grants}
			c := &SubscriptionChecker{Reviews: p.client().AuthorizationV1().SubjectAccessReviews(), Mapper: newMapper(), Charts: charts, RealKind: tc.realKind}
			errs, err := c.Check(context.Background(), tc.user, subscription(tc.feeds...))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("refusals (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.asked, p.asked()); diff != "" {
				t.Errorf("reviews (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheckAsksAsTheAuthor(t *testing.T) {
	user := authenticationv1.UserInfo{Username: "alice", UID: "u-1", Groups: []string{"team-a", "system:authenticated"},
		Extra: map[string]authenticationv1.ExtraValue{"scopes": {"x", "y"}}}
	p := &fakeParent{}
	c := &SubscriptionChecker{Reviews: p.client().AuthorizationV1().SubjectAccessReviews(), Mapper: newMapper(), Charts: fakeCharts{}}
	if _, err := c.Check(context.Background(), user, subscription(named("v1", "Secret", "team-a", "db"))); err != nil {
		t.Fatal(err)
	}
	want := []authorizationv1.SubjectAccessReviewSpec{{
		ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "get", Group: "shadow", Version: "v1alpha1", Resource: "secrets", Namespace: "team-a", Name: "db"},
		User:               "alice", UID: "u-1", Groups: []string{"team-a", "system:authenticated"},
		Extra: map[string]authorizationv1.ExtraValue{"scopes": {"x", "y"}},
	}}
	if diff := cmp.Diff(want, p.sars); diff != "" {
		t.Errorf("reviews (-want +got):\n%s", diff)
	}
}

func TestCheckBounds(t *testing.T) {
	p := &fakeParent{grants: everything("admin")}
	c := &SubscriptionChecker{Reviews: p.client().AuthorizationV1().SubjectAccessReviews(), Mapper: newMapper(), Charts: fakeCharts{}, RealKind: true, MaxChecks: 3}
	errs, err := c.Check(context.Background(), authenticationv1.UserInfo{Username: "admin"},
		subscription(named("v1", "Secret", "team-a", "a"), named("v1", "Secret", "team-a", "b")))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"spec.feeds: Forbidden: 2 feeds need 4 permission checks of their author, more than the 3 one Subscription may need: split it into several Subscriptions"}
	var got []string
	for _, e := range errs {
		got = append(got, e.Error())
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if len(p.sars) != 0 {
		t.Errorf("%d reviews made beyond the bound, want none", len(p.sars))
	}
}

func TestCheckParentFails(t *testing.T) {
	p := &fakeParent{fail: errors.New("connection refused")}
	c := &SubscriptionChecker{Reviews: p.client().AuthorizationV1().SubjectAccessReviews(), Mapper: newMapper(), Charts: fakeCharts{}}
	errs, err := c.Check(context.Background(), authenticationv1.UserInfo{Username: "alice"}, subscription(named("v1", "Secret", "team-a", "db")))
	if err == nil || !strings.Contains(err.Error(), `asking the parent whether user "alice" may get secrets: connection refused`) {
		t.Errorf("err = %v, want the parent's failure", err)
	}
	if errs != nil {
		t.Errorf("refusals %v alongside an error", errs)
	}
}

func TestCheckResetsTheMapperForANewKind(t *testing.T) {
	base := newMapper()
	m := &resettingMapper{RESTMapper: base, later: func() {
		base.Add(schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Widget"}, meta.RESTScopeRoot)
	}}
	p := &fakeParent{grants: everything("admin")}
	c := &SubscriptionChecker{Reviews: p.client().AuthorizationV1().SubjectAccessReviews(), Mapper: m, Charts: fakeCharts{}}
	feed := named("example.com/v1", "Widget", "team-a", "w")
	if _, err := c.Check(context.Background(), authenticationv1.UserInfo{Username: "admin"}, subscription(feed)); err != nil {
		t.Fatal(err)
	}
	// Known after the reset, and cluster-scoped: checked without the namespace.
	if diff := cmp.Diff([]string{"get shadow/widgets /w"}, p.asked()); diff != "" {
		t.Errorf("reviews (-want +got):\n%s", diff)
	}
	// A second unknown kind right after does not read discovery again.
	if _, err := c.Check(context.Background(), authenticationv1.UserInfo{Username: "admin"}, subscription(named("example.com/v1", "Gadget", "team-a", "g"))); err != nil {
		t.Fatal(err)
	}
	if m.resets != 1 {
		t.Errorf("%d resets, want 1 (at most one per ResetInterval)", m.resets)
	}
}
