package cli

import (
	"errors"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/restmapper"

	"github.com/clusternet/clusternet/pkg/client/shadow"
)

// withoutShadowGroup is the parent as the plugin's users see it: the shadow
// group is how templates are stored, not kinds of their own, so discovery
// (and the RESTMapper, short names and api-resources built on it) leaves it
// out. Kinds map to their real groups; the transport moves the requests.
type withoutShadowGroup struct {
	genericclioptions.RESTClientGetter
	warnings *printers.WarningPrinter

	once   sync.Once
	mapper meta.RESTMapper
	err    error
}

func newWithoutShadowGroup(getter genericclioptions.RESTClientGetter, streams genericiooptions.IOStreams) *withoutShadowGroup {
	return &withoutShadowGroup{
		RESTClientGetter: getter,
		warnings:         printers.NewWarningPrinter(streams.ErrOut, printers.WarningPrinterOptions{Color: printers.AllowsColorOutput(streams.ErrOut)}),
	}
}

func (w *withoutShadowGroup) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	d, err := w.RESTClientGetter.ToDiscoveryClient()
	if err != nil {
		return nil, err
	}
	return hideShadowDiscovery{d}, nil
}

// ToRESTMapper is ConfigFlags' mapper (deferred discovery, short names) on
// the filtered discovery, built once.
func (w *withoutShadowGroup) ToRESTMapper() (meta.RESTMapper, error) {
	w.once.Do(func() {
		d, err := w.ToDiscoveryClient()
		if err != nil {
			w.err = err
			return
		}
		mapper := restmapper.NewDeferredDiscoveryRESTMapper(d)
		w.mapper = restmapper.NewShortcutExpander(mapper, d, func(msg string) { w.warnings.Print(msg) })
	})
	return w.mapper, w.err
}

// hideShadowDiscovery drops the shadow group from what discovery returns.
// It does not offer aggregated discovery, so clients ask for groups and
// resources through the methods below (still served from the disk cache).
type hideShadowDiscovery struct {
	discovery.CachedDiscoveryInterface
}

func (h hideShadowDiscovery) ServerGroups() (*metav1.APIGroupList, error) {
	groups, err := h.CachedDiscoveryInterface.ServerGroups()
	if groups != nil {
		groups = groups.DeepCopy()
		groups.Groups = withoutShadow(groups.Groups)
	}
	return groups, err
}

func (h hideShadowDiscovery) ServerGroupsAndResources() ([]*metav1.APIGroup, []*metav1.APIResourceList, error) {
	groups, resources, err := h.CachedDiscoveryInterface.ServerGroupsAndResources()
	var keptGroups []*metav1.APIGroup
	for _, g := range groups {
		if g.Name != shadow.Group {
			keptGroups = append(keptGroups, g)
		}
	}
	return keptGroups, withoutShadowResources(resources), withoutShadowFailures(err)
}

func (h hideShadowDiscovery) ServerPreferredResources() ([]*metav1.APIResourceList, error) {
	resources, err := h.CachedDiscoveryInterface.ServerPreferredResources()
	return withoutShadowResources(resources), withoutShadowFailures(err)
}

func (h hideShadowDiscovery) ServerPreferredNamespacedResources() ([]*metav1.APIResourceList, error) {
	resources, err := h.CachedDiscoveryInterface.ServerPreferredNamespacedResources()
	return withoutShadowResources(resources), withoutShadowFailures(err)
}

func withoutShadow(groups []metav1.APIGroup) []metav1.APIGroup {
	var out []metav1.APIGroup
	for _, g := range groups {
		if g.Name != shadow.Group {
			out = append(out, g)
		}
	}
	return out
}

func isShadowGroupVersion(gv string) bool { return gv == shadow.Group+"/"+shadow.Version }

func withoutShadowResources(lists []*metav1.APIResourceList) []*metav1.APIResourceList {
	var out []*metav1.APIResourceList
	for _, l := range lists {
		if l != nil && !isShadowGroupVersion(l.GroupVersion) {
			out = append(out, l)
		}
	}
	return out
}

// withoutShadowFailures forgets a failure to discover the shadow group
// itself: it does not matter to the plugin's users.
func withoutShadowFailures(err error) error {
	var failed *discovery.ErrGroupDiscoveryFailed
	if !errors.As(err, &failed) {
		return err
	}
	rest := map[schema.GroupVersion]error{}
	for gv, e := range failed.Groups {
		if gv.Group != shadow.Group {
			rest[gv] = e
		}
	}
	if len(rest) == 0 {
		return nil
	}
	return &discovery.ErrGroupDiscoveryFailed{Groups: rest}
}
