// Package helm holds the hub's Helm controllers: the HelmChart resolver,
// the controller that turns Helm Descriptions into HelmReleases and mirrors
// their status, and the pusher that applies HelmReleases to the clusters the
// hub pushes to.
package helm

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/controller"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	appsinformers "github.com/clusternet/clusternet/pkg/generated/informers/externalversions/apps/v1alpha1"
	appslisters "github.com/clusternet/clusternet/pkg/generated/listers/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/helm"
)

// Event reasons on HelmCharts.
const (
	ReasonChartFound    = "ChartFound"
	ReasonChartNotFound = "ChartNotFound"
)

// Re-check periods of the resolver.
const (
	// DefaultRecheckFound re-checks a Found chart (it may be deleted from
	// its repository).
	DefaultRecheckFound = 10 * time.Minute
	// DefaultRecheckNotFound re-checks a NotFound chart: a repository that
	// comes back, a version pushed later, a credentials Secret fixed.
	DefaultRecheckNotFound = 20 * time.Second
)

// Resolver checks that every HelmChart's chart and version exist in its
// repository and sets its status Found or NotFound, with the reason and fix.
type Resolver struct {
	client versioned.Interface
	kube   kubernetes.Interface
	lister appslisters.HelmChartLister
	source *helm.Source
	events record.EventRecorder
	clock  clock.PassiveClock
	loop   *controller.Loop

	// RecheckFound and RecheckNotFound are the re-check periods.
	RecheckFound, RecheckNotFound time.Duration

	mu sync.Mutex
	// checked remembers when each chart (by UID) was last checked at which
	// generation, so the resolver's own status writes, resyncs and other
	// no-op events do not reach the repository again.
	checked map[types.UID]check
}

type check struct {
	generation int64
	at         time.Time
}

// NewResolver watches HelmCharts through informer.
func NewResolver(client versioned.Interface, kube kubernetes.Interface, informer appsinformers.HelmChartInformer,
	source *helm.Source, events record.EventRecorder, clk clock.PassiveClock) (*Resolver, error) {
	r := &Resolver{
		client:          client,
		kube:            kube,
		lister:          informer.Lister(),
		source:          source,
		events:          events,
		clock:           clk,
		RecheckFound:    DefaultRecheckFound,
		RecheckNotFound: DefaultRecheckNotFound,
		checked:         map[types.UID]check{},
	}
	r.loop = controller.New("helmchart-resolver", r.sync)
	return r, r.loop.Watch(informer.Informer(), nil)
}

// Run works until ctx ends.
func (r *Resolver) Run(ctx context.Context, workers int) { r.loop.Run(ctx, workers) }

func (r *Resolver) sync(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	cached, err := r.lister.HelmCharts(ns).Get(name)
	if apierrors.IsNotFound(err) {
		r.forget()
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	period := r.RecheckFound
	if cached.Status.Phase != appsv1alpha1.HelmChartFound {
		period = r.RecheckNotFound
	}
	now := r.clock.Now()
	r.mu.Lock()
	last, ok := r.checked[cached.UID]
	r.mu.Unlock()
	if ok && last.generation == cached.Generation && cached.Status.Phase != "" && cached.Status.ObservedGeneration == cached.Generation {
		if wait := period - now.Sub(last.at); wait > 0 {
			return wait, nil
		}
	}

	chart := cached.DeepCopy()
	logger := klog.FromContext(ctx).WithValues("helmChart", klog.KObj(chart))
	st := r.Check(ctx, chart)
	st.ObservedGeneration = chart.Generation
	logger.V(2).Info("Checked chart", "phase", st.Phase, "reason", st.Reason)
	r.mu.Lock()
	r.checked[chart.UID] = check{generation: chart.Generation, at: now}
	r.mu.Unlock()

	if st != chart.Status {
		prev := chart.Status.Phase
		chart.Status = st
		if _, err := r.client.AppsV1alpha1().HelmCharts(ns).UpdateStatus(ctx, chart, metav1.UpdateOptions{}); err != nil {
			r.mu.Lock()
			delete(r.checked, chart.UID)
			r.mu.Unlock()
			return 0, err
		}
		switch {
		case st.Phase == appsv1alpha1.HelmChartNotFound:
			r.events.Event(chart, corev1.EventTypeWarning, ReasonChartNotFound, st.Reason)
		case prev != appsv1alpha1.HelmChartFound:
			r.events.Eventf(chart, corev1.EventTypeNormal, ReasonChartFound, "Found chart %s version %s in %s", chart.Spec.Chart, displayVersion(chart.Spec.ChartVersion), chart.Spec.Repository)
		}
	}
	if st.Phase == appsv1alpha1.HelmChartFound {
		return r.RecheckFound, nil
	}
	return r.RecheckNotFound, nil
}

func displayVersion(v string) string {
	if v == "" {
		return "(latest)"
	}
	return v
}

// forget drops what it remembers of charts that no longer exist (a deleted
// chart's UID is gone with it).
func (r *Resolver) forget() {
	charts, err := r.lister.List(everything)
	if err != nil {
		return
	}
	live := make(map[types.UID]bool, len(charts))
	for _, c := range charts {
		live[c.UID] = true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for uid := range r.checked {
		if !live[uid] {
			delete(r.checked, uid)
		}
	}
}

// Check looks chart up in its repository and returns the status it should have.
func (r *Resolver) Check(ctx context.Context, chart *appsv1alpha1.HelmChart) appsv1alpha1.HelmChartStatus {
	creds, err := helm.ReadCredentials(ctx, r.kube, chart.Spec.ChartPullSecret, "HelmChart", chart.Namespace)
	if err != nil {
		return appsv1alpha1.HelmChartStatus{Phase: appsv1alpha1.HelmChartNotFound, Reason: err.Error()}
	}
	if _, err := r.source.Resolve(ctx, &chart.Spec.HelmOptions, creds); err != nil {
		return appsv1alpha1.HelmChartStatus{Phase: appsv1alpha1.HelmChartNotFound, Reason: err.Error()}
	}
	return appsv1alpha1.HelmChartStatus{Phase: appsv1alpha1.HelmChartFound}
}
