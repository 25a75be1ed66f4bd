// Package admission holds the hub's admission checks, served as validating
// webhooks by the hub's API server (deploy/hub/webhook.yaml). They exist
// because the author of a write is known only while it is admitted: once a
// Subscription is stored, the controllers that distribute it act as the hub.
package admission

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	authorizationv1client "k8s.io/client-go/kubernetes/typed/authorization/v1"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/apps/feeds"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	"github.com/clusternet/clusternet/pkg/throttle"
)

// ShadowGroup and ShadowVersion are where the shadow API serves templates
// (docs/shadow.md): a template of kind K is resource <plural of K> there.
const (
	ShadowGroup   = "shadow"
	ShadowVersion = "v1alpha1"
)

// Defaults of SubscriptionChecker's bounds.
const (
	// DefaultMaxChecks bounds the distinct permission checks (one
	// SubjectAccessReview each) one Subscription may need: a few per feed,
	// plus one per chart pull Secret a HelmChart selector matches. The
	// Subscriptions of upstream Clusternet's examples need a handful.
	DefaultMaxChecks = 256
	// DefaultConcurrency is how many SubjectAccessReviews one admission
	// request has in flight.
	DefaultConcurrency = 8
	// DefaultResetInterval is how often at most a kind the RESTMapper does
	// not know makes it read discovery again: a Subscription naming an
	// unknown kind must not make every admission re-read discovery.
	DefaultResetInterval = 10 * time.Second
)

// Charts reads HelmCharts with the hub's identity, to find the chart pull
// Secret each names. What it returns is never shown to an author who may not
// read the HelmChart.
type Charts interface {
	Get(ctx context.Context, namespace, name string) (*appsv1alpha1.HelmChart, error)
	// List lists the HelmCharts in namespace ("" for all) matching selector.
	List(ctx context.Context, namespace string, selector labels.Selector) ([]appsv1alpha1.HelmChart, error)
}

// SubscriptionChecker checks that a Subscription's author may read
// everything its feeds name: a Subscription may only name templates,
// HelmCharts and chart credentials its author may read, and a feedSelector
// never selects from namespaces the author cannot read (docs/distribution.md,
// "Who may distribute what").
type SubscriptionChecker struct {
	// Reviews asks the parent whether the author may do something.
	Reviews authorizationv1client.SubjectAccessReviewInterface
	// Mapper maps a feed's kind to its resource (cached discovery). When it
	// implements Reset, a kind it does not know makes it read discovery
	// again, at most every ResetInterval.
	Mapper meta.RESTMapper
	Charts Charts
	// RealKind also requires the permission on the real kind, as the shadow
	// API does with --shadow-authorize-real-kind (a Secret template needs
	// Secret read rights).
	RealKind bool

	// MaxChecks, Concurrency and ResetInterval default to the Default* constants.
	MaxChecks     int
	Concurrency   int
	ResetInterval time.Duration

	resets throttle.Interval
}

// need is one permission a feed needs.
type need struct {
	attrs authorizationv1.ResourceAttributes
	// what names the object for messages: `template secrets.shadow "db"`.
	what string
	// after is the index, among the same feed's needs, of the need that
	// must be granted for this one to be reported: a chart pull Secret's
	// name is shown only to an author who may read the HelmChart naming it.
	after int
}

type feedNeeds struct {
	index int
	needs []need
}

// Check returns what user may not do among what sub's feeds need, one
// error per missing permission, each naming the feed (spec.feeds[i]). An
// error that is not about a feed (the parent did not answer) comes back as
// err: the caller must refuse then too.
func (c *SubscriptionChecker) Check(ctx context.Context, user authenticationv1.UserInfo, sub *appsv1alpha1.Subscription) (field.ErrorList, error) {
	var errs field.ErrorList
	var all []feedNeeds
	for i, f := range sub.Spec.Feeds {
		path := field.NewPath("spec", "feeds").Index(i)
		ns, ferr, err := c.needsOf(ctx, path, f)
		if err != nil {
			return nil, err
		}
		if ferr != nil {
			errs = append(errs, ferr)
			continue
		}
		all = append(all, feedNeeds{index: i, needs: ns})
	}
	distinct := map[authorizationv1.ResourceAttributes]bool{}
	for _, fn := range all {
		for _, n := range fn.needs {
			distinct[n.attrs] = false
		}
	}
	if max := c.maxChecks(); len(distinct) > max {
		return field.ErrorList{field.Forbidden(field.NewPath("spec", "feeds"), fmt.Sprintf(
			"%d feeds need %d permission checks of their author, more than the %d one Subscription may need: split it into several Subscriptions",
			len(sub.Spec.Feeds), len(distinct), max))}, nil
	}
	if err := c.review(ctx, user, distinct); err != nil {
		return nil, err
	}
	for _, fn := range all {
		path := field.NewPath("spec", "feeds").Index(fn.index)
		for _, n := range fn.needs {
			if distinct[n.attrs] || (n.after >= 0 && !distinct[fn.needs[n.after].attrs]) {
				continue
			}
			errs = append(errs, field.Forbidden(path, refusal(user, n)))
		}
	}
	return errs, nil
}

// refusal says who may not do what, the rule, and the fix.
func refusal(user authenticationv1.UserInfo, n need) string {
	a := n.attrs
	where := "cluster-wide"
	if a.Namespace != "" {
		where = fmt.Sprintf("in namespace %q", a.Namespace)
	}
	res := a.Resource
	if a.Group != "" {
		res += "." + a.Group
	}
	obj := res
	if a.Name != "" {
		obj = fmt.Sprintf("%s %q", res, a.Name)
	}
	return fmt.Sprintf("user %q may not %s %s %s (%s): a Subscription may only name what its author may read: ask for %s on %s %s, or remove the feed",
		user.Username, a.Verb, obj, where, n.what, a.Verb, obj, where)
}

// needsOf lists what feed f at path needs. ferr says why f cannot be
// checked at all (its apiVersion does not parse).
func (c *SubscriptionChecker) needsOf(ctx context.Context, path *field.Path, f appsv1alpha1.Feed) ([]need, *field.Error, error) {
	gv, err := schema.ParseGroupVersion(f.APIVersion)
	if err != nil {
		return nil, field.Invalid(path.Child("apiVersion"), f.APIVersion,
			fmt.Sprintf("does not parse (%v), so who may read the feed cannot be checked: write it as <group>/<version>, or v1 for the core group", err)), nil
	}
	verb, name := "get", f.Name
	if name == "" {
		verb = "list" // a feedSelector: everything it may ever match
	}
	if feeds.IsChart(f) {
		return c.chartNeeds(ctx, f, verb)
	}
	if strings.HasSuffix(gv.Group, "clusternet.io") || gv.Group == ShadowGroup {
		// Never distributed: the feeds resolver refuses Clusternet's own
		// kinds (FeedKindNotAllowed), whoever names them.
		return nil, nil, nil
	}
	resource, namespaced, known := c.resourceOf(schema.GroupKind{Group: gv.Group, Kind: f.Kind}, gv.Version)
	ns := f.Namespace
	if !namespaced {
		// A namespace on a cluster-scoped kind means nothing, and must not
		// let a Role in that namespace grant it.
		ns = ""
	}
	desc := feeds.Describe(f)
	if f.Name == "" {
		desc = fmt.Sprintf("the feedSelector over %s %s", f.APIVersion, f.Kind)
	}
	if !known {
		desc += fmt.Sprintf(", a kind the parent does not serve: checked as resource %q", resource)
	}
	needs := []need{{
		attrs: authorizationv1.ResourceAttributes{Verb: verb, Group: ShadowGroup, Version: ShadowVersion, Resource: resource, Namespace: ns, Name: name},
		what:  "the templates of " + desc, after: -1,
	}}
	if f.Name != "" {
		needs[0].what = "the template of " + desc
	}
	if c.RealKind {
		needs = append(needs, need{
			attrs: authorizationv1.ResourceAttributes{Verb: verb, Group: gv.Group, Resource: resource, Namespace: ns, Name: name},
			what:  "a template needs the permission its real object needs: " + desc, after: -1,
		})
	}
	return needs, nil, nil
}

// resourceOf is the resource of gk. A kind the parent does not serve (the
// resolver says FeedKindNotServed; upstream Clusternet's own example has one) is
// checked under its guessed plural, in the namespace the feed gives, so a
// CRD installed later does not open what was not checked.
func (c *SubscriptionChecker) resourceOf(gk schema.GroupKind, version string) (resource string, namespaced, known bool) {
	for attempt := 0; attempt < 2; attempt++ {
		m, err := c.Mapper.RESTMapping(gk, version)
		if err != nil {
			m, err = c.Mapper.RESTMapping(gk) // served in another version: same resource
		}
		if err == nil {
			return m.Resource.Resource, m.Scope.Name() == meta.RESTScopeNameNamespace, true
		}
		if attempt == 0 && !c.reset() {
			break
		}
	}
	plural, _ := meta.UnsafeGuessKindToResource(gk.WithVersion(version))
	return plural.Resource, true, false
}

// reset makes the mapper read discovery again, unless it did so lately.
func (c *SubscriptionChecker) reset() bool {
	r, ok := c.Mapper.(interface{ Reset() })
	if !ok {
		return false
	}
	interval := c.ResetInterval
	if interval == 0 {
		interval = DefaultResetInterval
	}
	if !c.resets.Allow(interval) {
		return false
	}
	r.Reset()
	return true
}

// chartNeeds: get (or list) on the HelmChart(s), and get on the chart pull
// Secret of each HelmChart the feed names or matches now. The Secret is read
// from the HelmChart's own namespace only (helm_types.go).
func (c *SubscriptionChecker) chartNeeds(ctx context.Context, f appsv1alpha1.Feed, verb string) ([]need, *field.Error, error) {
	needs := []need{{
		attrs: authorizationv1.ResourceAttributes{Verb: verb, Group: appsv1alpha1.GroupName, Resource: "helmcharts", Namespace: f.Namespace, Name: f.Name},
		what:  feeds.Describe(f), after: -1,
	}}
	var charts []appsv1alpha1.HelmChart
	if f.Name != "" {
		if f.Namespace == "" {
			return needs, nil, nil // the resolver refuses it: HelmChart is namespaced
		}
		chart, err := c.Charts.Get(ctx, f.Namespace, f.Name)
		if apierrors.IsNotFound(err) {
			return needs, nil, nil
		}
		if err != nil {
			return nil, nil, fmt.Errorf("reading HelmChart %s/%s to find its chart pull Secret: %w", f.Namespace, f.Name, err)
		}
		charts = []appsv1alpha1.HelmChart{*chart}
	} else {
		needs[0].what = "the feedSelector over HelmCharts"
		sel, err := metav1.LabelSelectorAsSelector(f.FeedSelector)
		if err != nil {
			return needs, nil, nil // the resolver says FeedSelectorInvalid; the list check stands
		}
		if charts, err = c.Charts.List(ctx, f.Namespace, sel); err != nil {
			return nil, nil, fmt.Errorf("listing the HelmCharts feedSelector %q matches, to find their chart pull Secrets: %w", sel.String(), err)
		}
		slices.SortFunc(charts, func(a, b appsv1alpha1.HelmChart) int {
			return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
		})
	}
	for _, ch := range charts {
		ps := ch.Spec.ChartPullSecret
		if ps == nil || ps.Name == "" {
			continue
		}
		needs = append(needs, need{
			attrs: authorizationv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: ch.Namespace, Name: ps.Name},
			what:  fmt.Sprintf("the chart pull Secret of HelmChart %s/%s, which its clusters receive", ch.Namespace, ch.Name), after: 0,
		})
	}
	return needs, nil, nil
}

func (c *SubscriptionChecker) maxChecks() int {
	if c.MaxChecks > 0 {
		return c.MaxChecks
	}
	return DefaultMaxChecks
}

// review fills in, for each attribute set, whether user may: one
// SubjectAccessReview each, Concurrency at a time.
func (c *SubscriptionChecker) review(ctx context.Context, user authenticationv1.UserInfo, allowed map[authorizationv1.ResourceAttributes]bool) error {
	extra := make(map[string]authorizationv1.ExtraValue, len(user.Extra))
	for k, v := range user.Extra {
		extra[k] = authorizationv1.ExtraValue(v)
	}
	conc := c.Concurrency
	if conc <= 0 {
		conc = DefaultConcurrency
	}
	keys := make([]authorizationv1.ResourceAttributes, 0, len(allowed))
	for attrs := range allowed {
		keys = append(keys, attrs)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		errs    []error
		granted = make([]bool, len(keys))
		sem     = make(chan struct{}, conc)
	)
	for i, attrs := range keys {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				ResourceAttributes: &attrs, User: user.Username, UID: user.UID, Groups: user.Groups, Extra: extra,
			}}
			got, err := c.Reviews.Create(ctx, sar, metav1.CreateOptions{})
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("asking the parent whether user %q may %s %s: %w", user.Username, attrs.Verb, attrs.Resource, err))
				mu.Unlock()
				cancel()
				return
			}
			granted[i] = got.Status.Allowed
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for i, attrs := range keys {
		allowed[attrs] = granted[i]
	}
	return nil
}

// ClientCharts reads HelmCharts straight from the parent: an admission
// decision must not rest on a cache that has not seen the chart yet.
type ClientCharts struct {
	Client versioned.Interface
}

var _ Charts = ClientCharts{}

// Get reads one HelmChart.
func (c ClientCharts) Get(ctx context.Context, namespace, name string) (*appsv1alpha1.HelmChart, error) {
	return c.Client.AppsV1alpha1().HelmCharts(namespace).Get(ctx, name, metav1.GetOptions{})
}

// List lists the HelmCharts in namespace ("" for all) matching selector.
func (c ClientCharts) List(ctx context.Context, namespace string, selector labels.Selector) ([]appsv1alpha1.HelmChart, error) {
	l, err := c.Client.AppsV1alpha1().HelmCharts(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector.String()})
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}
