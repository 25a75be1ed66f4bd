package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/tools/cache"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/generated/informers/externalversions"
)

// rolloutWatch keeps a Subscription, its Bases and its Descriptions current
// in informers: each lists once, then watches. A watch that ends or fails is
// relisted by the informer's reflector, with backoff: the parent is never
// polled. Only the goroutine that calls start, data and stop touches it;
// the informers only signal changed, fatal and notes.
type rolloutWatch struct {
	reader subscriptionReader
	// perNamespace: the caller may not list Bases and Descriptions in all
	// namespaces, so each bound cluster's dedicated namespace is watched.
	perNamespace bool

	// changed has a value when something changed or an informer synced.
	changed chan struct{}
	// fatal has an error that ends the watch: the caller lacks a permission.
	fatal chan error
	// notes has a watch failure the reflector retries by itself.
	notes chan string

	sub *informerSet
	// owned watch Bases and Descriptions, by namespace ("" for all).
	owned map[string]*informerSet
}

// informerSet is the informers of one factory (one namespace, one filter).
type informerSet struct {
	factory   externalversions.SharedInformerFactory
	stop      chan struct{}
	informers []cache.SharedIndexInformer
}

func newRolloutWatch(reader subscriptionReader) *rolloutWatch {
	return &rolloutWatch{
		reader:  reader,
		changed: make(chan struct{}, 1),
		fatal:   make(chan error, 1),
		notes:   make(chan string, 1),
		owned:   map[string]*informerSet{},
	}
}

// start reads the Subscription (so a missing one fails at once, by name),
// finds out where the caller may list, and starts the informers.
func (w *rolloutWatch) start(ctx context.Context) error {
	sub, err := w.reader.getSubscription(ctx)
	if err != nil {
		return err
	}
	apps := w.reader.client.AppsV1alpha1()
	basesEverywhere, err := mayListEverywhere(ctx, "bases", func(ctx context.Context, ns string, o metav1.ListOptions) error {
		_, err := apps.Bases(ns).List(ctx, o)
		return err
	})
	if err != nil {
		return err
	}
	descsEverywhere, err := mayListEverywhere(ctx, "descriptions", func(ctx context.Context, ns string, o metav1.ListOptions) error {
		_, err := apps.Descriptions(ns).List(ctx, o)
		return err
	})
	if err != nil {
		return err
	}
	w.perNamespace = !basesEverywhere || !descsEverywhere

	name := fields.OneTermEqualSelector("metadata.name", w.reader.name).String()
	w.sub = w.startSet(w.reader.namespace, "", func(o *metav1.ListOptions) { o.FieldSelector = name },
		func(f externalversions.SharedInformerFactory) []cache.SharedIndexInformer {
			return []cache.SharedIndexInformer{f.Apps().V1alpha1().Subscriptions().Informer()}
		}, "subscriptions")
	if w.perNamespace {
		w.follow(sub)
	} else {
		w.startOwned(metav1.NamespaceAll, "")
	}
	return nil
}

// follow watches the dedicated namespace of every cluster sub is bound to,
// and stops watching the others.
func (w *rolloutWatch) follow(sub *appsv1alpha1.Subscription) {
	bound := map[string]bool{}
	for _, c := range boundClusters(sub) {
		bound[c.Namespace] = true
		if w.owned[c.Namespace] == nil {
			w.startOwned(c.Namespace, c.Name)
		}
	}
	for ns, set := range w.owned {
		if !bound[ns] {
			set.shutdown()
			delete(w.owned, ns)
		}
	}
}

func (w *rolloutWatch) startOwned(namespace, cluster string) {
	selector := w.reader.ownedSelector()
	w.owned[namespace] = w.startSet(namespace, cluster, func(o *metav1.ListOptions) { o.LabelSelector = selector },
		func(f externalversions.SharedInformerFactory) []cache.SharedIndexInformer {
			return []cache.SharedIndexInformer{f.Apps().V1alpha1().Bases().Informer(), f.Apps().V1alpha1().Descriptions().Informer()}
		}, "bases", "descriptions")
}

// startSet starts the informers pick takes from a factory for namespace
// (the dedicated namespace of cluster, when set), resources naming them
// in that order for messages.
func (w *rolloutWatch) startSet(namespace, cluster string, tweak func(*metav1.ListOptions),
	pick func(externalversions.SharedInformerFactory) []cache.SharedIndexInformer, resources ...string) *informerSet {
	set := &informerSet{
		factory: externalversions.NewSharedInformerFactoryWithOptions(w.reader.client, 0,
			externalversions.WithNamespace(namespace), externalversions.WithTweakListOptions(tweak)),
		stop: make(chan struct{}),
	}
	set.informers = pick(set.factory)
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { w.signal() },
		UpdateFunc: func(any, any) { w.signal() },
		DeleteFunc: func(any) { w.signal() },
	}
	var synced []cache.InformerSynced
	for i, inf := range set.informers {
		resource := resources[i]
		// The handler is set before the informer starts, so it cannot fail.
		_ = inf.SetWatchErrorHandler(func(_ *cache.Reflector, err error) { w.watchFailed(resource, namespace, cluster, err) })
		if _, err := inf.AddEventHandler(handler); err != nil {
			w.report(w.fatal, err)
		}
		synced = append(synced, inf.HasSynced)
	}
	set.factory.Start(set.stop)
	// Nothing is added to an empty list: say when it is synced all the same.
	go func() {
		if cache.WaitForCacheSync(set.stop, synced...) {
			w.signal()
		}
	}()
	return set
}

func (w *rolloutWatch) signal() {
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

func (w *rolloutWatch) report(ch chan error, err error) {
	select {
	case ch <- err:
	default:
	}
}

// watchFailed sorts a reflector's failure: a permission the caller lacks
// ends the watch (retrying cannot help); an ended or expired watch is
// routine (relisted); anything else is retried and shown meanwhile.
func (w *rolloutWatch) watchFailed(resource, namespace, cluster string, err error) {
	switch {
	case apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err):
		// The apiserver's own words, without the reflector's "failed to list <Go type>".
		var status *apierrors.StatusError
		if errors.As(err, &status) {
			err = status
		}
		// An informer lists, then watches: the apiserver says which it refused.
		verb := "list"
		if strings.Contains(err.Error(), "cannot watch") {
			verb = "watch"
		}
		w.report(w.fatal, explainRead(verb, resource, namespace, cluster, err))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), apierrors.IsResourceExpired(err), apierrors.IsGone(err):
	default:
		select {
		case w.notes <- fmt.Sprintf("watching %s.%s: %v; retrying", resource, appsv1alpha1.GroupName, err):
		default:
		}
	}
}

// data is the current state, and false until every informer has synced. A
// Subscription gone from a synced informer was deleted.
func (w *rolloutWatch) data() (subscriptionData, bool, error) {
	if !w.sub.synced() {
		return subscriptionData{}, false, nil
	}
	key := w.reader.namespace + "/" + w.reader.name
	obj, exists, err := w.sub.informers[0].GetStore().GetByKey(key)
	switch {
	case err != nil:
		return subscriptionData{}, false, err
	case !exists:
		return subscriptionData{}, false, fmt.Errorf("subscription %q in namespace %q was deleted while waiting for its rollout", w.reader.name, w.reader.namespace)
	}
	d := subscriptionData{Sub: obj.(*appsv1alpha1.Subscription)}
	if w.perNamespace {
		w.follow(d.Sub)
	}
	for _, set := range w.owned {
		if !set.synced() {
			return subscriptionData{}, false, nil
		}
		for _, o := range set.informers[0].GetStore().List() {
			d.Bases = append(d.Bases, o.(*appsv1alpha1.Base))
		}
		for _, o := range set.informers[1].GetStore().List() {
			d.Descriptions = append(d.Descriptions, o.(*appsv1alpha1.Description))
		}
	}
	return d, true, nil
}

func (s *informerSet) synced() bool {
	for _, inf := range s.informers {
		if !inf.HasSynced() {
			return false
		}
	}
	return true
}

func (s *informerSet) shutdown() {
	close(s.stop)
	s.factory.Shutdown()
}

// stop ends every informer and waits for them.
func (w *rolloutWatch) stop() {
	if w.sub != nil {
		w.sub.shutdown()
	}
	for _, set := range w.owned {
		set.shutdown()
	}
}
