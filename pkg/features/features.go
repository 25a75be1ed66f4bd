// Package features holds the hub's and the agent's feature gates, by
// upstream Clusternet's names, so that its manifests' --feature-gates work
// here unchanged.
package features

import (
	"k8s.io/component-base/featuregate"
)

const (
	// AppPusher lets the hub push applications to this child (agent side).
	// Off, the child behaves as in Pull mode whatever its sync mode.
	AppPusher featuregate.Feature = "AppPusher"

	// Deployer runs the hub's application distribution: Subscriptions to
	// Bases to Descriptions, overrides, pushing to children, Helm (hub side).
	// Upstream's README asks for it to be on; it is on by default.
	Deployer featuregate.Feature = "Deployer"

	// FeedInUseProtection postpones the deletion of a template or HelmChart
	// while a Subscription of its namespace uses it as a feed (hub side,
	// docs/feed-protection.md). Alpha and off by default, as upstream has
	// it: it changes what kubectl delete does, so clusters opt in.
	FeedInUseProtection featuregate.Feature = "FeedInUseProtection"

	// Predictor has the agent report what its cluster can still take
	// (ManagedCluster status.available, status.predictorEnabled) at each
	// heartbeat, so dynamic dividing places replicas where they fit (agent
	// side). Alpha and off by default, as upstream has it. Upstream's
	// predictor is an HTTP service the scheduler calls; here the agent
	// writes its answer into its status instead (docs/api.md).
	Predictor featuregate.Feature = "Predictor"

	// FailOver moves the replicas of Dividing Subscriptions off clusters
	// that have stopped reporting for longer than the hub's grace period,
	// and back as their scheduling asks once they return (hub side,
	// docs/failover.md). Alpha and off by default, as upstream has it:
	// it moves workloads on the hub's own judgement of a cluster's health.
	FailOver featuregate.Feature = "FailOver"

	// MultiClusterService runs the multi-cluster services controllers
	// (KEP-1645's ServiceExport and ServiceImport, docs/mcs.md) on the hub
	// and the agent. Alpha and off by default, as upstream has it: a cluster
	// that uses another implementation (Submariner, a service mesh) keeps
	// it off.
	MultiClusterService featuregate.Feature = "MultiClusterService"

	// The gates below name what upstream Clusternet can turn off and this
	// project always does. They are accepted so that upstream's
	// --feature-gates=SocketConnection=true,... starts these binaries, and
	// locked on: turning one off is refused at start, naming the gate,
	// rather than ignored.

	// SocketConnection names that the hub reaches children only through the agents'
	// tunnels (hub and agent).
	SocketConnection featuregate.Feature = "SocketConnection"
	// ShadowAPI names that the hub always serves the shadow API.
	ShadowAPI featuregate.Feature = "ShadowAPI"
	// Recovery names that the deployers always put back what was changed in a child
	// behind the parent's back (agent).
	Recovery featuregate.Feature = "Recovery"
	// FeedInventory names that the hub always fills FeedInventories.
	FeedInventory featuregate.Feature = "FeedInventory"
)

// alwaysOn is a gate this project cannot turn off.
var alwaysOn = featuregate.FeatureSpec{Default: true, PreRelease: featuregate.GA, LockToDefault: true}

// HubGates and AgentGates are the gates each binary knows, with their
// defaults and stages (docs/api.md lists them; a test keeps it so).
var (
	HubGates = map[featuregate.Feature]featuregate.FeatureSpec{
		Deployer:            {Default: true, PreRelease: featuregate.Beta},
		FeedInUseProtection: {Default: false, PreRelease: featuregate.Alpha},
		FailOver:            {Default: false, PreRelease: featuregate.Alpha},
		MultiClusterService: {Default: false, PreRelease: featuregate.Alpha},
		SocketConnection:    alwaysOn,
		ShadowAPI:           alwaysOn,
		FeedInventory:       alwaysOn,
	}
	AgentGates = map[featuregate.Feature]featuregate.FeatureSpec{
		AppPusher:           {Default: true, PreRelease: featuregate.Beta},
		Predictor:           {Default: false, PreRelease: featuregate.Alpha},
		MultiClusterService: {Default: false, PreRelease: featuregate.Alpha},
		SocketConnection:    alwaysOn,
		Recovery:            alwaysOn,
	}
)

// NewHubGates are the hub's gates, at their defaults.
func NewHubGates() featuregate.MutableFeatureGate { return newGates(HubGates) }

// NewAgentGates are the agent's gates, at their defaults.
func NewAgentGates() featuregate.MutableFeatureGate { return newGates(AgentGates) }

func newGates(specs map[featuregate.Feature]featuregate.FeatureSpec) featuregate.MutableFeatureGate {
	gates := featuregate.NewFeatureGate()
	if err := gates.Add(specs); err != nil {
		panic(err) // only a programming error: the maps above are constant
	}
	return gates
}
