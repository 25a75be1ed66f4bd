package charts

import (
	"testing"
)

// TestAgentCRDs: the agent chart's crds/ are there for its installers
// (kubectl clusternet join) to apply, as helm does.
func TestAgentCRDs(t *testing.T) {
	ch, err := Load(Agent)
	if err != nil {
		t.Fatal(err)
	}
	crds, err := CRDs(ch)
	if err != nil {
		t.Fatal(err)
	}
	if len(crds) != len(ch.CRDObjects()) || len(crds) == 0 {
		t.Fatalf("CRDs = %d objects, the chart has %d files in crds/", len(crds), len(ch.CRDObjects()))
	}
	for _, c := range crds {
		if c.GetKind() != "CustomResourceDefinition" || c.GetName() == "" {
			t.Errorf("crds/ holds %s %q, want named CustomResourceDefinitions", c.GetKind(), c.GetName())
		}
	}
}
