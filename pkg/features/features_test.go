package features_test

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"k8s.io/component-base/featuregate"

	"github.com/clusternet/clusternet/pkg/features"
)

// Upstream Clusternet's manifests turn these on; they must start our
// binaries unchanged, and turning off what cannot be turned off here must
// be refused, naming the gate.
func TestUpstreamFeatureGates(t *testing.T) {
	tests := []struct {
		name    string
		gates   featuregate.MutableFeatureGate
		set     string
		wantErr string
	}{
		{name: "hub, upstream's flags", gates: features.NewHubGates(), set: "SocketConnection=true,ShadowAPI=true,Deployer=true,FeedInventory=true"},
		// Upstream's hub chart turns FeedInUseProtection on.
		{name: "hub, upstream's chart", gates: features.NewHubGates(), set: "SocketConnection=true,Deployer=true,FeedInUseProtection=true,FeedInventory=true"},
		{name: "agent, a hub gate", gates: features.NewAgentGates(), set: "FeedInUseProtection=true",
			wantErr: "unrecognized feature gate: FeedInUseProtection"},
		{name: "agent, upstream's flags", gates: features.NewAgentGates(), set: "SocketConnection=true,AppPusher=true,Recovery=true"},
		{name: "hub, Deployer off", gates: features.NewHubGates(), set: "Deployer=false"},
		{name: "hub, tunnels off", gates: features.NewHubGates(), set: "SocketConnection=false",
			wantErr: "cannot set feature gate SocketConnection to false, feature is locked to true"},
		{name: "agent, Recovery off", gates: features.NewAgentGates(), set: "Recovery=false",
			wantErr: "cannot set feature gate Recovery to false, feature is locked to true"},
		// Predictor is upstream's agent gate; upstream has no PredictorAPI
		// gate, on either side.
		{name: "agent, Predictor on", gates: features.NewAgentGates(), set: "Predictor=true,AppPusher=true"},
		{name: "hub, an agent gate", gates: features.NewHubGates(), set: "Predictor=true",
			wantErr: "unrecognized feature gate: Predictor"},
		{name: "agent, no PredictorAPI gate", gates: features.NewAgentGates(), set: "PredictorAPI=true",
			wantErr: "unrecognized feature gate: PredictorAPI"},
		{name: "hub, FailOver and MultiClusterService on", gates: features.NewHubGates(), set: "FailOver=true,MultiClusterService=true"},
		{name: "agent, MultiClusterService on", gates: features.NewAgentGates(), set: "MultiClusterService=true"},
		{name: "agent, a hub gate", gates: features.NewAgentGates(), set: "FailOver=true",
			wantErr: "unrecognized feature gate: FailOver"},
		{name: "a gate upstream has and this project does not", gates: features.NewHubGates(), set: "ClusterInit=true",
			wantErr: "unrecognized feature gate: ClusterInit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.gates.Set(tc.set)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// docs/api.md lists every gate with the binary it is set on, its default
// and its stage, as the code has them.
func TestFeatureGatesDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `(\\w+)` \\| (hub|agent|hub, agent) \\| `(true|false)` \\| (\\w+) \\|")
	documented := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		documented[m[1]] = fmt.Sprintf("%s %s %s", m[2], m[3], m[4])
	}
	want := map[string]string{}
	for name, spec := range features.HubGates {
		want[string(name)] = fmt.Sprintf("hub %t %s", spec.Default, stageName(spec))
	}
	for name, spec := range features.AgentGates {
		side := "agent"
		if hub, ok := features.HubGates[name]; ok {
			if hub != spec {
				t.Errorf("feature gate %s has another default or stage on the hub (%+v) than on the agent (%+v)", name, hub, spec)
			}
			side = "hub, agent"
		}
		want[string(name)] = fmt.Sprintf("%s %t %s", side, spec.Default, stageName(spec))
	}
	for name, w := range want {
		if documented[name] != w {
			t.Errorf("docs/api.md's feature gate row of %s says %q, want %q (side, default, stage)", name, documented[name], w)
		}
	}
	for name := range documented {
		if _, ok := want[name]; !ok {
			t.Errorf("docs/api.md lists feature gate %s, which neither binary has", name)
		}
	}
}

// stageName is how docs/api.md names a gate's stage.
func stageName(spec featuregate.FeatureSpec) string {
	if spec.LockToDefault {
		return "locked"
	}
	if spec.PreRelease == featuregate.GA {
		return "GA"
	}
	return string(spec.PreRelease)
}
