package helm_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/release"
	helmtime "helm.sh/helm/v3/pkg/time"

	"github.com/clusternet/clusternet/pkg/helm"
)

var now = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// rev is a release revision fixture.
func rev(version int, status release.Status, chartVersion string, values map[string]any, age time.Duration, description string) *release.Release {
	return &release.Release{
		Name:    "web",
		Version: version,
		Chart:   &chart.Chart{Metadata: &chart.Metadata{Name: "demo", Version: chartVersion}},
		Config:  values,
		Info: &release.Info{
			Status:       status,
			Description:  description,
			LastDeployed: helmtime.Time{Time: now.Add(-age)},
		},
	}
}

// startedBy labels r as started by a process of component.
func startedBy(r *release.Release, component, instance string) *release.Release {
	r.Labels = map[string]string{helm.LabelApplier: component, helm.LabelApplierInstance: instance}
	return r
}

func TestDecide(t *testing.T) {
	const timeout, retry = 5 * time.Minute, 10 * time.Minute
	want := helm.Desired{Chart: "demo", Version: "0.2.0", Values: map[string]any{"replicas": 2}}
	stored := map[string]any{"replicas": float64(2)} // as decoded from a release Secret
	failedUpgrade := rev(2, release.StatusFailed, "0.2.0", stored, time.Minute, `Upgrade "web" failed: boom`)
	self := helm.Applier{Component: "clusternet-agent", Instance: "me"}
	pendingBy := func(component, instance string) []*release.Release {
		return []*release.Release{startedBy(rev(4, release.StatusPendingUpgrade, "0.2.0", stored, time.Minute, ""), component, instance)}
	}
	tests := []struct {
		name    string
		history []*release.Release
		self    *helm.Applier // nil: self
		want    helm.Decision
	}{
		{name: "no release", want: helm.Decision{Action: helm.ActionInstall, Why: "release not installed"}},
		{name: "uninstalled", history: []*release.Release{rev(1, release.StatusUninstalled, "0.1.0", nil, time.Hour, "")},
			want: helm.Decision{Action: helm.ActionInstall, Why: "release was uninstalled"}},
		{name: "up to date (numbers compare as JSON)", history: []*release.Release{rev(1, release.StatusDeployed, "0.2.0", stored, time.Hour, "")},
			want: helm.Decision{Action: helm.ActionNone, Why: "release is up to date"}},
		{name: "new chart version", history: []*release.Release{rev(1, release.StatusDeployed, "0.1.0", stored, time.Hour, "")},
			want: helm.Decision{Action: helm.ActionUpgrade, Why: "chart version 0.1.0 -> 0.2.0"}},
		{name: "new values", history: []*release.Release{rev(1, release.StatusDeployed, "0.2.0", map[string]any{"replicas": 1}, time.Hour, "")},
			want: helm.Decision{Action: helm.ActionUpgrade, Why: "values changed"}},
		{name: "values removed", history: []*release.Release{rev(1, release.StatusDeployed, "0.2.0", map[string]any{"a": "b"}, time.Hour, "")},
			want: helm.Decision{Action: helm.ActionUpgrade, Why: "values changed"}},
		{name: "only the newest revision counts", history: []*release.Release{
			rev(2, release.StatusDeployed, "0.2.0", stored, time.Hour, ""),
			rev(1, release.StatusSuperseded, "0.1.0", nil, 2*time.Hour, ""),
		}, want: helm.Decision{Action: helm.ActionNone, Why: "release is up to date"}},
		{name: "operation in progress", history: []*release.Release{rev(1, release.StatusPendingInstall, "0.2.0", stored, time.Minute, "")},
			want: helm.Decision{Action: helm.ActionWait, Why: "revision 1 is pending-install", After: timeout}},
		{name: "operation interrupted", history: []*release.Release{rev(3, release.StatusPendingUpgrade, "0.2.0", stored, time.Hour, "")},
			want: helm.Decision{Action: helm.ActionRecover, Why: "revision 3 has been pending-upgrade for 1h0m0s, longer than its timeout: taking it for interrupted"}},
		{name: "pending, started by an earlier process of this component: recovered at once", history: pendingBy("clusternet-agent", "gone"),
			want: helm.Decision{Action: helm.ActionRecover, Why: "revision 4 is pending-upgrade, started by clusternet-agent instance gone, which is gone: taking it for interrupted"}},
		{name: "pending, started by this process: its operation may still run", history: pendingBy("clusternet-agent", "me"),
			want: helm.Decision{Action: helm.ActionWait, Why: "revision 4 is pending-upgrade", After: timeout}},
		{name: "pending, started by another component: it may still run", history: pendingBy("clusternet-hub", "gone"),
			want: helm.Decision{Action: helm.ActionWait, Why: "revision 4 is pending-upgrade", After: timeout}},
		{name: "pending, started without an instance: it may still run", history: pendingBy("clusternet-agent", ""),
			want: helm.Decision{Action: helm.ActionWait, Why: "revision 4 is pending-upgrade", After: timeout}},
		{name: "pending, a decider without an applier knows no predecessors", history: pendingBy("clusternet-agent", "gone"), self: &helm.Applier{},
			want: helm.Decision{Action: helm.ActionWait, Why: "revision 4 is pending-upgrade", After: timeout}},
		{name: "failed: wait before retrying", history: []*release.Release{rev(1, release.StatusFailed, "0.2.0", stored, time.Minute, "failed")},
			want: helm.Decision{Action: helm.ActionNone, Why: "revision 1 failed; retrying in 9m0s", After: 9 * time.Minute,
				Failed: rev(1, release.StatusFailed, "0.2.0", stored, time.Minute, "failed")}},
		{name: "failed: retry after a while", history: []*release.Release{rev(1, release.StatusFailed, "0.2.0", stored, time.Hour, "failed")},
			want: helm.Decision{Action: helm.ActionUpgrade, Why: "retrying revision 1, which failed",
				Failed: rev(1, release.StatusFailed, "0.2.0", stored, time.Hour, "failed")}},
		{name: "failed with other values: upgrade at once", history: []*release.Release{rev(1, release.StatusFailed, "0.2.0", nil, time.Minute, "failed")},
			want: helm.Decision{Action: helm.ActionUpgrade, Why: "values changed"}},
		{name: "atomic upgrade rolled back: wait before retrying", history: []*release.Release{
			rev(1, release.StatusSuperseded, "0.1.0", stored, time.Hour, "Install complete"),
			failedUpgrade,
			rev(3, release.StatusDeployed, "0.1.0", stored, time.Minute, "Rollback to 1"),
		}, want: helm.Decision{Action: helm.ActionNone, Why: "revision 2 failed; retrying in 9m0s", After: 9 * time.Minute, Failed: failedUpgrade}},
		{name: "atomic upgrade rolled back, then a newer version is wanted", history: []*release.Release{
			rev(1, release.StatusSuperseded, "0.1.0", stored, time.Hour, "Install complete"),
			rev(2, release.StatusFailed, "0.1.5", stored, time.Minute, "failed"),
			rev(3, release.StatusDeployed, "0.1.0", stored, time.Minute, "Rollback to 1"),
		}, want: helm.Decision{Action: helm.ActionUpgrade, Why: "chart version 0.1.0 -> 0.2.0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			decider := self
			if tc.self != nil {
				decider = *tc.self
			}
			got := helm.Decide(tc.history, want, now, timeout, retry, decider)
			// Revisions compare by number (charts have unexported fields).
			failedRevision := cmp.Transformer("revision", func(r *release.Release) int {
				if r == nil {
					return 0
				}
				return r.Version
			})
			if diff := cmp.Diff(tc.want, got, failedRevision); diff != "" {
				t.Errorf("Decide (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseValues(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		want    map[string]any
		wantErr string
	}{
		{name: "empty"},
		{name: "json", raw: `{"a":{"b":1}}`, want: map[string]any{"a": map[string]any{"b": float64(1)}}},
		{name: "yaml", raw: "a: x\n", want: map[string]any{"a": "x"}},
		{name: "not an object", raw: `[1]`, wantErr: "spec.overrides must be a JSON object of Helm values: error unmarshaling JSON: while decoding JSON: json: cannot unmarshal array into Go value of type map[string]interface {}"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := helm.ParseValues([]byte(tc.raw))
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error %v, want %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Error(diff)
			}
		})
	}
}
