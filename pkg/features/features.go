// Package features holds Clusternet's feature gates, on component-base's
// featuregate so --feature-gates behaves as in every Kubernetes component.
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
	// The seed README asks for it to be on; it is on by default.
	Deployer featuregate.Feature = "Deployer"
)

// NewHubGates returns the hub's gates with their defaults.
func NewHubGates() featuregate.MutableFeatureGate {
	gates := featuregate.NewFeatureGate()
	if err := gates.Add(map[featuregate.Feature]featuregate.FeatureSpec{
		Deployer: {Default: true, PreRelease: featuregate.Beta},
	}); err != nil {
		panic(err) // only a programming error: the map above is constant
	}
	return gates
}

// NewAgentGates returns the agent's gates with their defaults.
func NewAgentGates() featuregate.MutableFeatureGate {
	gates := featuregate.NewFeatureGate()
	if err := gates.Add(map[featuregate.Feature]featuregate.FeatureSpec{
		AppPusher: {Default: true, PreRelease: featuregate.Beta},
	}); err != nil {
		panic(err) // only a programming error: the map above is constant
	}
	return gates
}
