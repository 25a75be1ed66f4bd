package helm_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v3/pkg/release"

	"github.com/clusternet/clusternet/pkg/apps/override"
	"github.com/clusternet/clusternet/pkg/helm"
)

// FuzzValues follows Helm values from two Helm overrides to the agent: the
// hub merges them (override.MergeValues) into a Description's ChartRaw, the
// HelmRelease carries that text as spec.overrides, the agent parses it
// (ParseValues), installs, and later compares the release Helm stored with
// what is wanted (Decide). Invariants: no panic; what the hub wrote always
// parses; parsing is deterministic; the parsed values are the merged values
// (SameValues), and so is what Helm stores, so a release installed with
// them is up to date and never upgraded again for nothing; SameValues is
// reflexive and symmetric.
func FuzzValues(f *testing.F) {
	f.Add("image:\n  tag: \"8.0\"\n  repository: mysql\nauth:\n  rootPassword: a\nextra: [1, 2]\n",
		`{"image":{"tag":"8.1"},"auth":null,"extra":[3],"primary":{"persistence":{"enabled":false}}}`)
	f.Add(`{"replicas":2}`, `{"a":{"b":1}}`)
	f.Add(`{"a":1}`, `{"a":{"b":2}}`)
	f.Add("a: x\n", `{"big":12345678901234567890,"small":1e-7,"neg":-0,"u":"\u00e9\u2028"}`)
	f.Add(`{"empty":{}}`, `{"list":[{},[],null,""]}`)
	f.Add("", "")
	f.Add(`[1]`, `{"a":1}`)
	f.Fuzz(func(t *testing.T, first, second string) {
		values := map[string]any{}
		if override.MergeValues(values, first) != nil || override.MergeValues(values, second) != nil {
			return
		}
		chartRaw, err := override.ValuesJSON(values)
		if err != nil {
			t.Fatalf("ValuesJSON: %v", err)
		}
		parsed, err := helm.ParseValues(chartRaw)
		if err != nil {
			t.Fatalf("the agent cannot parse the values the hub wrote, %s: %v", chartRaw, err)
		}
		again, err := helm.ParseValues(chartRaw)
		if err != nil || !cmp.Equal(parsed, again) {
			t.Fatalf("ParseValues(%s) is not deterministic: %v then %v (%v)", chartRaw, parsed, again, err)
		}
		if !helm.SameValues(values, parsed) || !helm.SameValues(parsed, values) {
			t.Fatalf("the agent reads other values than the hub merged:\n merged %v\n parsed %v", values, parsed)
		}
		if !helm.SameValues(values, values) {
			t.Fatalf("SameValues(%v, itself) is false", values)
		}
		// Helm stores the values with the release as JSON.
		storedJSON, err := json.Marshal(parsed)
		if err != nil {
			t.Fatal(err)
		}
		var stored map[string]any
		if err := json.Unmarshal(storedJSON, &stored); err != nil {
			t.Fatal(err)
		}
		last := rev(1, release.StatusDeployed, "0.1.0", stored, time.Hour, "Install complete")
		want := helm.Desired{Chart: "demo", Version: "0.1.0", Values: parsed}
		if d := helm.Decide([]*release.Release{last}, want, now, 5*time.Minute, 10*time.Minute, helm.Applier{}); d.Action != helm.ActionNone {
			t.Fatalf("a release installed with %s is not up to date: %+v", chartRaw, d)
		}
	})
}
