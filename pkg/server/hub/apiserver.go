package hub

import (
	"fmt"
	"net/http"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/sets"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"
	genericfilters "k8s.io/apiserver/pkg/server/filters"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/apiserver/pkg/util/compatibility"

	proxiesv1alpha1 "github.com/clusternet/clusternet/pkg/apis/proxies/v1alpha1"
	"github.com/clusternet/clusternet/pkg/generated/openapi"
	"github.com/clusternet/clusternet/pkg/server/hub/admission"
	"github.com/clusternet/clusternet/pkg/server/hub/shadow"
	"github.com/clusternet/clusternet/pkg/server/hub/sockets"
	"github.com/clusternet/clusternet/pkg/version"
)

var (
	scheme = runtime.NewScheme()
	codecs = serializer.NewCodecFactory(scheme)
)

func init() {
	if err := proxiesv1alpha1.AddToScheme(scheme); err != nil {
		panic(err)
	}
	metav1.AddToGroupVersion(scheme, schema.GroupVersion{Version: "v1"})
	unversioned := schema.GroupVersion{Group: "", Version: "v1"}
	scheme.AddUnversionedTypes(unversioned, &metav1.Status{}, &metav1.APIVersions{}, &metav1.APIGroupList{}, &metav1.APIGroup{}, &metav1.APIResourceList{})
}

// newRecommendedOptions are the aggregated server's options: delegated
// authentication and authorization, no storage (the hub keeps no state), no
// admission (nothing is written).
func newRecommendedOptions() *genericoptions.RecommendedOptions {
	o := genericoptions.NewRecommendedOptions("", codecs.LegacyCodec(proxiesv1alpha1.SchemeGroupVersion))
	o.Etcd = nil
	o.Admission = nil
	o.EgressSelector = nil
	o.Traces = nil
	o.SecureServing.BindPort = 6443
	// The parent's own priority and fairness has already admitted every
	// request that reaches the hub, but for the long-running ones (watches,
	// proxied streams, tunnels: the hub bounds those itself, per cluster);
	// a second queue would only add latency.
	o.Features.EnablePriorityAndFairness = false
	// /debug/pprof is off unless asked for (--profiling): a profile shows
	// what the hub holds and does, and serving one costs CPU. When on, it is
	// behind the same delegated authentication and authorization as
	// /metrics: only a parent identity granted get on nonResourceURL
	// /debug/pprof/* reaches it (docs/security.md).
	o.Features.EnableProfiling = false
	o.Features.EnableContentionProfiling = false
	return o
}

// profilingUsage replaces the generic API server's help for --profiling,
// whose default we turn off.
const profilingUsage = "Serve /debug/pprof/ (Go's CPU, heap, goroutine ... profiles) on the secure port, to parent identities granted get on nonResourceURL /debug/pprof/* only. " +
	"Named as in Kubernetes components, whose flag it is, but off by default here: a profile is for investigating, not for every hub."

// longRunning marks every sockets request long-running: a tunnel lives for
// hours, and proxied watches, logs -f, exec and port-forward for as long as
// their user wants. The rest follows the usual Kubernetes rules.
func longRunning(r *http.Request, ri *request.RequestInfo) bool {
	if ri.IsResourceRequest && ri.APIGroup == proxiesv1alpha1.GroupName && ri.Resource == "sockets" {
		return true
	}
	return genericfilters.BasicLongRunningRequestCheck(sets.NewString("watch", "proxy"), sets.NewString("attach", "exec", "proxy", "log", "portforward"))(r, ri)
}

// newAPIServer builds the aggregated API server for proxies.clusternet.io
// and the shadow API (shadow/v1alpha1, served by its own handler), and the
// Subscription admission webhook (admission.SubscriptionsPath).
func (o *Options) newAPIServer(c *Context, peering *peering) (*genericapiserver.GenericAPIServer, error) {
	if o.Kubeconfig != "" {
		if o.Recommended.CoreAPI.CoreAPIKubeconfigPath == "" {
			o.Recommended.CoreAPI.CoreAPIKubeconfigPath = o.Kubeconfig
		}
		if o.Recommended.Authentication.RemoteKubeConfigFile == "" {
			o.Recommended.Authentication.RemoteKubeConfigFile = o.Kubeconfig
		}
		if o.Recommended.Authorization.RemoteKubeConfigFile == "" {
			o.Recommended.Authorization.RemoteKubeConfigFile = o.Kubeconfig
		}
	}
	// The parent's apiserver calls admission webhooks without credentials
	// (it has none to give unless its AdmissionConfiguration names a
	// kubeconfig): the webhook path is served to anonymous callers, and
	// decides with SubjectAccessReviews for the user the review names.
	if o.Recommended.Authorization != nil && !slices.Contains(o.Recommended.Authorization.AlwaysAllowPaths, admission.SubscriptionsPath) {
		o.Recommended.Authorization.WithAlwaysAllowPaths(admission.SubscriptionsPath)
	}
	config := genericapiserver.NewRecommendedConfig(codecs)
	config.EffectiveVersion = compatibility.DefaultBuildEffectiveVersion()
	if err := o.Recommended.ApplyTo(config); err != nil {
		return nil, err
	}
	if err := peering.apply(config); err != nil {
		return nil, fmt.Errorf("peer trust: %w", err)
	}
	config.LongRunningFunc = longRunning
	namer := openapinamer.NewDefinitionNamer(scheme)
	config.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(openapi.GetOpenAPIDefinitions, namer)
	config.OpenAPIConfig.Info.Title, config.OpenAPIConfig.Info.Version = "clusternet-hub", version.Get().GitVersion
	config.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(openapi.GetOpenAPIDefinitions, namer)
	config.OpenAPIV3Config.Info.Title, config.OpenAPIV3Config.Info.Version = "clusternet-hub", version.Get().GitVersion
	server, err := config.Complete().New("clusternet-hub", genericapiserver.NewEmptyDelegate())
	if err != nil {
		return nil, err
	}
	mcInformer := c.Informers.Clusters().V1beta1().ManagedClusters().Informer()
	if err := sockets.AddClusterIDIndex(mcInformer); err != nil {
		return nil, err
	}
	clusters := sockets.Clusters{Indexer: mcInformer.GetIndexer(), Synced: mcInformer.HasSynced}
	if err := server.AddReadyzChecks(informersSynced(c, mcInformer.HasSynced, c.Registrations().HasSynced)); err != nil {
		return nil, err
	}
	identities, err := sockets.LoadIdentityMapping(o.IdentityMappingFile)
	if err != nil {
		return nil, err
	}
	// The bare socket serves agents older than the tunnel subresource.
	tunnels := sockets.NewSocketREST(c.Transports.Tunnels(), clusters, c.Registrations())
	group := genericapiserver.NewDefaultAPIGroupInfo(proxiesv1alpha1.GroupName, scheme, runtime.NewParameterCodec(scheme), codecs)
	group.VersionedResourcesStorageMap[proxiesv1alpha1.SchemeGroupVersion.Version] = map[string]rest.Storage{
		"sockets": tunnels,
		"sockets/" + proxiesv1alpha1.TunnelSubresource: tunnels,
		"sockets/proxy": peering.proxy(sockets.NewProxyREST(c.Transports, clusters, identities)),
	}
	if err := server.InstallAPIGroup(&group); err != nil {
		return nil, err
	}
	shadowAPI, err := shadow.New(shadow.Options{
		Config:              c.Config,
		AuthorizeRealKind:   o.ShadowAuthorizeRealKind,
		MaxRequestBodyBytes: config.MaxRequestBodyBytes,
		MinRequestTimeout:   time.Duration(config.MinRequestTimeout) * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("shadow API: %w", err)
	}
	if err := shadowAPI.Install(server); err != nil {
		return nil, fmt.Errorf("shadow API: %w", err)
	}
	server.Handler.NonGoRestfulMux.Handle(admission.SubscriptionsPath, &admission.SubscriptionWebhook{Checker: &admission.SubscriptionChecker{
		Reviews:  c.Kube.AuthorizationV1().SubjectAccessReviews(),
		Mapper:   c.Mapper,
		Charts:   admission.ClientCharts{Client: c.Clusternet},
		RealKind: o.ShadowAuthorizeRealKind,
	}})
	return server, nil
}
