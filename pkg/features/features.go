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

	// SocketConnection, ShadowAPI, Recovery and FeedInventory name what
	// upstream Clusternet can turn off and this project always does: the
	// hub reaches children only through the agents' tunnels, always
	// serves the shadow API, the deployers always put back what was changed
	// in a child behind the parent's back (Recovery), and the hub always
	// fills FeedInventories. They are accepted so that upstream's
	// --feature-gates=SocketConnection=true,... starts these binaries, and
	// locked on: turning one off is refused at start, naming the gate,
	// rather than ignored.
	SocketConnection featuregate.Feature = "SocketConnection"
	ShadowAPI        featuregate.Feature = "ShadowAPI"
	Recovery         featuregate.Feature = "Recovery"
	FeedInventory    featuregate.Feature = "FeedInventory"
)

// alwaysOn is a gate this project cannot turn off.
var alwaysOn = featuregate.FeatureSpec{Default: true, PreRelease: featuregate.GA, LockToDefault: true}

// HubGates and AgentGates are the gates each binary knows, with their
// defaults and stages (docs/api.md lists them; a test keeps it so).
var (
	HubGates = map[featuregate.Feature]featuregate.FeatureSpec{
		Deployer:         {Default: true, PreRelease: featuregate.Beta},
		SocketConnection: alwaysOn,
		ShadowAPI:        alwaysOn,
		FeedInventory:    alwaysOn,
	}
	AgentGates = map[featuregate.Feature]featuregate.FeatureSpec{
		AppPusher:        {Default: true, PreRelease: featuregate.Beta},
		SocketConnection: alwaysOn,
		Recovery:         alwaysOn,
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
