package helm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/release"
	"sigs.k8s.io/yaml"
)

// Desired is the release a HelmRelease asks for.
type Desired struct {
	// Chart and Version are the chart's name and its resolved version.
	Chart, Version string
	// Values are the overrides, as Helm gets them.
	Values map[string]any
}

// Action is what a HelmRelease needs done to its release.
type Action string

// The actions.
const (
	// ActionNone: the release is as the spec asks.
	ActionNone Action = "None"
	// ActionInstall: there is no release (or only an uninstalled one).
	ActionInstall Action = "Install"
	// ActionUpgrade: the chart version or the values changed, or a failed
	// release is retried.
	ActionUpgrade Action = "Upgrade"
	// ActionWait: another operation on the release is in progress; look again later.
	ActionWait Action = "Wait"
	// ActionRecover: an operation was interrupted (its process died) and
	// left the release pending for longer than it may take: mark that
	// revision failed, then upgrade.
	ActionRecover Action = "Recover"
)

// Decision is what to do and why; After > 0 asks to look again then.
type Decision struct {
	Action Action
	Why    string
	After  time.Duration
	// Failed, when set, is the revision in which the wanted chart and values
	// failed (the last one, or one an atomic upgrade rolled back): the
	// release is reported failed with its message even though Helm's last
	// revision may be deployed.
	Failed *release.Release
}

// Labels on every revision a Releaser with an Applier starts: which
// component started it, and which process of that component. They let a
// later process tell a pending revision its predecessor left (the
// operation can no longer finish) from one that may still be running.
const (
	LabelApplier         = "apps.clusternet.io/applier"
	LabelApplierInstance = "apps.clusternet.io/applier-instance"
)

// Applier is the process applying releases: its component
// (clusternet-agent, clusternet-hub) and this run of it.
type Applier struct {
	Component, Instance string
}

// labels stamps a revision with a.
func (a Applier) labels() map[string]string {
	if a.Component == "" {
		return nil
	}
	return map[string]string{LabelApplier: a.Component, LabelApplierInstance: a.Instance}
}

// predecessorOf says whether rev was started by another, earlier process
// of a's component. Where at most one process of a component reaches a
// cluster at a time (see Releaser.Applier), that process is gone and so is
// its operation.
func (a Applier) predecessorOf(rev *release.Release) (instance string, ok bool) {
	instance = rev.Labels[LabelApplierInstance]
	return instance, a.Component != "" && a.Instance != "" && rev.Labels[LabelApplier] == a.Component &&
		instance != "" && instance != a.Instance
}

// pendingGrace is how much longer than its timeout an operation may stay
// pending before it is taken for interrupted.
const pendingGrace = time.Minute

// rollbackPrefix starts the description Helm gives a rollback revision.
const rollbackPrefix = "Rollback to "

// Decide compares a release's revisions (in any order) with what is wanted.
// timeout is the operation timeout; when the wanted chart and values already
// failed, they are tried again once retryAfter has passed since. self is
// the process deciding: a pending revision one of its predecessors started
// is recovered at once; any other (this process's own, another component's,
// or one started by hand with the helm CLI) only once it has been pending
// longer than its timeout allows, since its operation may still be running.
func Decide(history []*release.Release, want Desired, now time.Time, timeout, retryAfter time.Duration, self Applier) Decision {
	revs := make([]*release.Release, 0, len(history))
	for _, r := range history {
		if r != nil && r.Info != nil {
			revs = append(revs, r)
		}
	}
	sort.Slice(revs, func(i, j int) bool { return revs[i].Version < revs[j].Version })
	if len(revs) == 0 {
		return Decision{Action: ActionInstall, Why: "release not installed"}
	}
	last := revs[len(revs)-1]
	status := last.Info.Status
	switch {
	case status == release.StatusUninstalled:
		return Decision{Action: ActionInstall, Why: "release was uninstalled"}
	case status.IsPending() || status == release.StatusUninstalling:
		if instance, ok := self.predecessorOf(last); ok {
			return Decision{Action: ActionRecover, Why: fmt.Sprintf("revision %d is %s, started by %s instance %s, which is gone: taking it for interrupted",
				last.Version, status, self.Component, instance)}
		}
		age := now.Sub(last.Info.LastDeployed.Time)
		if limit := timeout + pendingGrace; age < limit {
			return Decision{Action: ActionWait, Why: fmt.Sprintf("revision %d is %s", last.Version, status), After: limit - age}
		}
		return Decision{Action: ActionRecover, Why: fmt.Sprintf("revision %d has been %s for %s, longer than its timeout: taking it for interrupted", last.Version, status, age.Round(time.Second))}
	}
	failed := last
	if why := diff(last, want); why != "" {
		// An atomic upgrade that failed left: ..., N failed (wanted), N+1
		// deployed "Rollback to ...". Do not upgrade again at once.
		if len(revs) < 2 || status != release.StatusDeployed || !strings.HasPrefix(last.Info.Description, rollbackPrefix) {
			return Decision{Action: ActionUpgrade, Why: why}
		}
		prev := revs[len(revs)-2]
		if prev.Info.Status != release.StatusFailed || diff(prev, want) != "" {
			return Decision{Action: ActionUpgrade, Why: why}
		}
		failed = prev
	} else if status == release.StatusDeployed {
		return Decision{Action: ActionNone, Why: "release is up to date"}
	}
	// The wanted chart and values failed.
	age := now.Sub(failed.Info.LastDeployed.Time)
	if age < retryAfter {
		return Decision{Action: ActionNone, Failed: failed, After: retryAfter - age,
			Why: fmt.Sprintf("revision %d failed; retrying in %s", failed.Version, (retryAfter - age).Round(time.Second))}
	}
	return Decision{Action: ActionUpgrade, Failed: failed, Why: fmt.Sprintf("retrying revision %d, which failed", failed.Version)}
}

// diff says how last differs from want, or "".
func diff(last *release.Release, want Desired) string {
	var name, version string
	if last.Chart != nil && last.Chart.Metadata != nil {
		name, version = last.Chart.Metadata.Name, last.Chart.Metadata.Version
	}
	if name != want.Chart {
		return fmt.Sprintf("chart %s -> %s", name, want.Chart)
	}
	if version != want.Version {
		return fmt.Sprintf("chart version %s -> %s", version, want.Version)
	}
	if !SameValues(last.Config, want.Values) {
		return "values changed"
	}
	return ""
}

// SameValues compares Helm values as JSON, so that numbers decoded from a
// stored release compare equal to the same numbers given in memory, and an
// empty map equals none.
func SameValues(a, b map[string]any) bool {
	return bytes.Equal(canonicalValues(a), canonicalValues(b))
}

func canonicalValues(v map[string]any) []byte {
	if len(v) == 0 {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return []byte(fmt.Sprint(v))
	}
	// Round-trip so that every number is a float64 as after decoding.
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return b
	}
	b, _ = json.Marshal(out)
	return b
}

// ParseValues decodes HelmRelease spec.overrides (a JSON object; YAML is
// accepted too, as Helm accepts it).
func ParseValues(raw []byte) (map[string]any, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	var v map[string]any
	if err := yaml.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("spec.overrides must be a JSON object of Helm values: %w", err)
	}
	return v, nil
}
