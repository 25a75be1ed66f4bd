package helm

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/clusternet/clusternet/pkg/throttle"
)

// Cluster is one child cluster as Helm reaches it: a client configuration
// (the agent's own, or the hub's through the cluster's tunnel) and a
// discovery cache shared by every release installed there.
type Cluster struct {
	config *rest.Config
	// newDiscovery builds the uncached discovery client (a fake in tests).
	newDiscovery func(*rest.Config) (discovery.DiscoveryInterface, error)
	// refreshes bounds, to resetEvery, how long a discovery is trusted.
	refreshes  throttle.Interval
	resetEvery time.Duration

	once   sync.Once
	err    error
	disco  discovery.CachedDiscoveryInterface
	mapper meta.RESTMapper
	// deferred is mapper's discovery-backed mapper, what a reset resets.
	deferred *restmapper.DeferredDiscoveryRESTMapper
}

// DiscoveryMaxAge is how long a Cluster's discovery is used before Helm
// acts with a fresh one.
const DiscoveryMaxAge = 10 * time.Second

// NewCluster returns the cluster cfg reaches.
func NewCluster(cfg *rest.Config) *Cluster {
	return &Cluster{config: rest.CopyConfig(cfg), resetEvery: DiscoveryMaxAge,
		newDiscovery: func(cfg *rest.Config) (discovery.DiscoveryInterface, error) {
			return discovery.NewDiscoveryClientForConfig(cfg)
		}}
}

// NewClusterWith returns the cluster cfg reaches, with a discovery someone
// else owns: the hub's per-cluster registry shares one discovery (and
// mapper) per cluster between Helm and the deployer, so that a reset here
// (see refresh) is a reset there too.
func NewClusterWith(cfg *rest.Config, disco discovery.CachedDiscoveryInterface, mapper *restmapper.DeferredDiscoveryRESTMapper) *Cluster {
	c := &Cluster{config: rest.CopyConfig(cfg), resetEvery: DiscoveryMaxAge}
	c.once.Do(func() {
		c.disco, c.deferred = disco, mapper
		c.mapper = restmapper.NewShortcutExpander(mapper, disco, nil)
		c.refreshes.Mark()
	})
	return c
}

func (c *Cluster) init() error {
	c.once.Do(func() {
		d, err := c.newDiscovery(rest.CopyConfig(c.config))
		if err != nil {
			c.err = err
			return
		}
		c.disco = memory.NewMemCacheClient(d)
		c.deferred = restmapper.NewDeferredDiscoveryRESTMapper(c.disco)
		c.mapper = restmapper.NewShortcutExpander(c.deferred, c.disco, nil)
		c.refreshes.Mark()
	})
	return c.err
}

// refresh drops the discovery once it is resetEvery old. Helm resets it
// itself only after installing a chart's own crds/, so a CRD installed in
// the child by anything else (another Description, an operator) would stay
// unknown to every release here until a restart. The reset is lazy: only
// an install, upgrade or uninstall rediscovers, at most once per resetEvery.
func (c *Cluster) refresh() {
	if c.refreshes.Allow(c.resetEvery) {
		c.deferred.Reset() // invalidates c.disco too
	}
}

// Getter is what Helm's action configuration needs to act in namespace
// (the release's target namespace, where its Secrets are stored too). Each
// action gets one, so a discovery older than resetEvery is dropped here.
func (c *Cluster) Getter(namespace string) (genericclioptions.RESTClientGetter, error) {
	if err := c.init(); err != nil {
		return nil, err
	}
	c.refresh()
	return &restClientGetter{cluster: c, namespace: namespace}, nil
}

type restClientGetter struct {
	cluster   *Cluster
	namespace string
}

var _ genericclioptions.RESTClientGetter = &restClientGetter{}

func (g *restClientGetter) ToRESTConfig() (*rest.Config, error) {
	return rest.CopyConfig(g.cluster.config), nil
}

func (g *restClientGetter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	return g.cluster.disco, nil
}

func (g *restClientGetter) ToRESTMapper() (meta.RESTMapper, error) {
	return g.cluster.mapper, nil
}

// ToRawKubeConfigLoader gives Helm the namespace; there is no kubeconfig.
func (g *restClientGetter) ToRawKubeConfigLoader() clientcmd.ClientConfig {
	return &namespacedConfig{
		empty:  clientcmd.NewDefaultClientConfig(clientcmdapi.Config{}, &clientcmd.ConfigOverrides{}),
		getter: g,
	}
}

// namespacedConfig answers Helm's questions about the kubeconfig: the
// namespace, and the client configuration the getter has.
type namespacedConfig struct {
	empty  clientcmd.ClientConfig
	getter *restClientGetter
}

var _ clientcmd.ClientConfig = &namespacedConfig{}

func (n *namespacedConfig) RawConfig() (clientcmdapi.Config, error) { return n.empty.RawConfig() }

func (n *namespacedConfig) ClientConfig() (*rest.Config, error) { return n.getter.ToRESTConfig() }

func (n *namespacedConfig) Namespace() (string, bool, error) { return n.getter.namespace, true, nil }

func (n *namespacedConfig) ConfigAccess() clientcmd.ConfigAccess { return n.empty.ConfigAccess() }
