package agent

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	clusternetscheme "github.com/clusternet/clusternet/pkg/generated/clientset/versioned/scheme"
)

// PullContext is what the agent's pull-mode controllers are built from: the
// parent as this cluster's agent sees it (its dedicated namespace), and the
// child.
type PullContext struct {
	// ParentConfig carries the agent's parent credentials: everything in the
	// dedicated namespace, its own request and socket, nothing else.
	ParentConfig *rest.Config
	Parent       versioned.Interface
	ParentKube   kubernetes.Interface
	// Namespace is the cluster's dedicated namespace in the parent, where its
	// Bases, Descriptions and HelmReleases live.
	Namespace string
	ClusterID types.UID
	// ChildConfig reaches the child with the agent's own credentials.
	ChildConfig *rest.Config
	// SyncMode and AppPusher decide who applies: the agent when
	// !clusterv1beta1.HubPushes(SyncMode, AppPusher).
	SyncMode  clusterv1beta1.ClusterSyncMode
	AppPusher bool
	// Events records events in the dedicated namespace of the parent, from
	// component clusternet-agent.
	Events  record.EventRecorder
	Workers int
}

// A puller is one of the agent's pull-mode controllers; it runs until ctx ends.
type puller struct {
	name string
	run  func(ctx context.Context, c *PullContext) error
}

// pullers run in every agent; each decides by PullContext.SyncMode and
// AppPusher whether it has anything to do.
var pullers = []puller{
	// Generic Descriptions (pull_generic.go).
	{name: "generic-puller", run: runGenericPuller},
	// HelmReleases (pull_helm.go).
	{name: "helm-puller", run: runHelmPuller},
}

var agentEventScheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, clusternetscheme.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}()

// runPullers starts the pull-mode controllers once the agent is registered.
func (a *Agent) runPullers(ctx context.Context) error {
	parentCfg := a.parentConfig(string(a.creds.Token), a.creds.CACertificate)
	parentKube, err := kubernetes.NewForConfig(parentCfg)
	if err != nil {
		return err
	}
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: parentKube.CoreV1().Events(a.creds.DedicatedNamespace)})
	c := &PullContext{
		ParentConfig: parentCfg,
		Parent:       a.parent,
		ParentKube:   parentKube,
		Namespace:    a.creds.DedicatedNamespace,
		ClusterID:    a.clusterID,
		ChildConfig:  a.childCfg,
		SyncMode:     clusterv1beta1.ClusterSyncMode(a.opts.ClusterSyncMode),
		AppPusher:    a.appPusher(),
		Events:       broadcaster.NewRecorder(agentEventScheme, corev1.EventSource{Component: "clusternet-agent"}),
		Workers:      2,
	}
	for _, p := range pullers {
		go func() {
			if err := p.run(ctx, c); err != nil && ctx.Err() == nil {
				a.logError(ctx, fmt.Errorf("pull controller %s: %w", p.name, err))
			}
		}()
	}
	return nil
}
