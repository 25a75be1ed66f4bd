package helm

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	"k8s.io/klog/v2"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

// Defaults for options a HelmRelease leaves unset (the CRD defaults them;
// objects written without defaulting get the same).
const (
	DefaultTimeout      = 300 * time.Second
	DefaultHistoryLimit = 5
	// DefaultRetryAfter is how long a release whose wanted chart and values
	// failed waits before it is tried again (a spec change retries at once).
	DefaultRetryAfter = 5 * time.Minute
	// HelmDriver stores releases as Secrets in the release's namespace, as
	// `helm` does by default, so `helm ls -n <namespace>` in the child sees them.
	HelmDriver = "secret"
	// maxReleaseName is Helm's limit on release names.
	maxReleaseName = 53
)

// ReleaseName is the Helm release name of hr: spec.releaseName, or hr's own
// name (shortened with a hash when longer than Helm allows).
func ReleaseName(hr *appsv1alpha1.HelmRelease) string {
	if hr.Spec.ReleaseName != nil && *hr.Spec.ReleaseName != "" {
		return *hr.Spec.ReleaseName
	}
	return ShortName(hr.Name, maxReleaseName)
}

// ShortName returns name, or when it is longer than limit, its start and a
// hash of the whole, limit characters in all.
func ShortName(name string, limit int) string {
	if len(name) <= limit {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	suffix := "-" + hex.EncodeToString(sum[:])[:8]
	return strings.TrimRight(name[:limit-len(suffix)], "-.") + suffix
}

func timeout(hr *appsv1alpha1.HelmRelease) time.Duration {
	if hr.Spec.TimeoutSeconds > 0 {
		return time.Duration(hr.Spec.TimeoutSeconds) * time.Second
	}
	return DefaultTimeout
}

func historyLimit(hr *appsv1alpha1.HelmRelease) int {
	if hr.Spec.HistoryLimit != nil {
		return int(*hr.Spec.HistoryLimit)
	}
	return DefaultHistoryLimit
}

// Releaser installs, upgrades and uninstalls HelmReleases' releases in
// child clusters with Helm's action package.
type Releaser struct {
	Source *Source
	// RetryAfter overrides DefaultRetryAfter when positive.
	RetryAfter time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Configure makes Helm's action configuration for a namespace of a
	// cluster; nil means Configuration (releases as Secrets in the cluster).
	Configure func(ctx context.Context, cluster *Cluster, namespace string) (*action.Configuration, error)
	// Applier, when set, is the component applying with this Releaser
	// (clusternet-agent, clusternet-hub). Every revision it starts is
	// labelled with it and Instance, and a pending revision an earlier
	// process of the same component left is recovered at once instead of
	// after its timeout. Set it only where at most one process of the
	// component reaches a cluster at a time: one agent per cluster (its
	// Deployment recreates, never rolls), and for the hub only the replica
	// holding the cluster's tunnel, the child's only way in from the hub.
	Applier string
	// Instance is this process of Applier; "" means ProcessInstance.
	Instance string
}

// ProcessInstance tells this process from every other run of the same
// component, also one restarted in the same container (same host name,
// same PID).
var ProcessInstance = newInstance()

func newInstance() string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b)
}

func (r *Releaser) self() Applier {
	if r.Applier == "" {
		return Applier{}
	}
	if r.Instance != "" {
		return Applier{Component: r.Applier, Instance: r.Instance}
	}
	return Applier{Component: r.Applier, Instance: ProcessInstance}
}

// Result is what Apply did and the release's status afterwards.
type Result struct {
	Decision Decision
	Status   appsv1alpha1.HelmReleaseStatus
	// ChartVersion is the version the spec resolved to ("" when Apply did
	// not get that far).
	ChartVersion string
}

// StatusFromRelease is a HelmRelease status mirroring Helm's view of rel.
func StatusFromRelease(rel *release.Release, generation int64) appsv1alpha1.HelmReleaseStatus {
	st := appsv1alpha1.HelmReleaseStatus{ObservedGeneration: generation}
	if rel == nil {
		return st
	}
	st.Version = rel.Version
	if rel.Info != nil {
		st.Phase = rel.Info.Status.String()
		st.Description = rel.Info.Description
		st.Notes = rel.Info.Notes
	}
	return st
}

// FailedStatus reports that the operation for generation failed with err;
// last (may be nil) is the release's newest revision.
func FailedStatus(last *release.Release, generation int64, err error) appsv1alpha1.HelmReleaseStatus {
	st := StatusFromRelease(last, generation)
	st.Phase = release.StatusFailed.String()
	st.Description = err.Error()
	return st
}

func (r *Releaser) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Configuration is Helm's action configuration for namespace of cluster,
// with releases stored as Secrets there.
func Configuration(ctx context.Context, cluster *Cluster, namespace string) (*action.Configuration, error) {
	getter, err := cluster.Getter(namespace)
	if err != nil {
		return nil, err
	}
	logger := klog.FromContext(ctx).V(4)
	cfg := &action.Configuration{}
	if err := cfg.Init(getter, namespace, HelmDriver, func(format string, v ...any) {
		logger.Info(fmt.Sprintf(format, v...))
	}); err != nil {
		return nil, err
	}
	return cfg, nil
}

// history lists name's revisions (none when it was never installed).
func history(cfg *action.Configuration, name string) ([]*release.Release, error) {
	revs, err := cfg.Releases.History(name)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, nil
	}
	return revs, err
}

func newest(revs []*release.Release) *release.Release {
	var last *release.Release
	for _, r := range revs {
		if r != nil && (last == nil || r.Version > last.Version) {
			last = r
		}
	}
	return last
}

// Apply brings hr's release in cluster to what hr's spec asks: install,
// upgrade, or nothing. starting, when set, is called with the pending phase
// before a long operation begins, so that its status can say so. The
// returned status is always set, also with an error.
func (r *Releaser) Apply(ctx context.Context, cluster *Cluster, hr *appsv1alpha1.HelmRelease, creds *Credentials, starting func(phase release.Status)) (Result, error) {
	name, ns, gen := ReleaseName(hr), hr.Spec.TargetNamespace, hr.Generation
	logger := klog.FromContext(ctx).WithValues("helmRelease", klog.KObj(hr), "release", name, "targetNamespace", ns)
	cfg, err := r.configure(ctx, cluster, ns)
	if err != nil {
		return Result{Status: FailedStatus(nil, gen, err)}, err
	}
	revs, err := history(cfg, name)
	if err != nil {
		err = fmt.Errorf("reading release %s/%s from the cluster: %w", ns, name, err)
		return Result{Status: FailedStatus(nil, gen, err)}, err
	}
	last := newest(revs)
	if last != nil && last.Info != nil && last.Info.Status.IsPending() {
		// Do not fetch the chart while another operation runs.
		d := Decide(revs, Desired{}, r.now(), timeout(hr), r.retryAfter(), r.self())
		if d.Action == ActionWait {
			return Result{Decision: d, Status: StatusFromRelease(last, gen)}, nil
		}
	}

	version, err := r.Source.Resolve(ctx, &hr.Spec.HelmOptions, creds)
	if err != nil {
		return Result{Status: FailedStatus(last, gen, err)}, err
	}
	ch, err := r.Source.Load(ctx, &hr.Spec.HelmOptions, version, creds)
	if err != nil {
		return Result{Status: FailedStatus(last, gen, err)}, err
	}
	values, err := ParseValues(hr.Spec.Overrides)
	if err != nil {
		return Result{Status: FailedStatus(last, gen, err)}, err
	}
	want := Desired{Chart: ch.Metadata.Name, Version: version, Values: values}
	d := Decide(revs, want, r.now(), timeout(hr), r.retryAfter(), r.self())
	logger.V(2).Info("Helm release decision", "action", d.Action, "why", d.Why)
	res := Result{Decision: d, ChartVersion: version}
	switch d.Action {
	case ActionNone:
		res.Status = StatusFromRelease(last, gen)
		if d.Failed != nil {
			res.Status.Phase = release.StatusFailed.String()
			res.Status.Description = d.Failed.Info.Description
			if d.Failed != last {
				res.Status.Description += fmt.Sprintf(" (revision %d; rolled back to revision %d)", d.Failed.Version, last.Version)
			}
		}
		return res, nil
	case ActionWait:
		res.Status = StatusFromRelease(last, gen)
		return res, nil
	case ActionRecover:
		// The operation may have ended between the read and now: mark the
		// revision only as it was read (Helm's storage takes no
		// precondition, so compare first).
		if cur, err := cfg.Releases.Get(name, last.Version); err != nil || cur.Info == nil ||
			cur.Info.Status != last.Info.Status || !cur.Info.LastDeployed.Equal(last.Info.LastDeployed) {
			res.Decision = Decision{Action: ActionWait, Why: fmt.Sprintf("revision %d changed while deciding; looking again", last.Version), After: time.Second}
			res.Status = StatusFromRelease(last, gen)
			return res, nil
		}
		last.Info.Status = release.StatusFailed
		last.Info.Description = "marked failed by Clusternet: " + d.Why
		if err := cfg.Releases.Update(last); err != nil {
			err = fmt.Errorf("marking interrupted revision %d of release %s/%s failed: %w", last.Version, ns, name, err)
			res.Status = FailedStatus(last, gen, err)
			return res, err
		}
		fallthrough
	case ActionUpgrade:
		if starting != nil {
			starting(release.StatusPendingUpgrade)
		}
		up := action.NewUpgrade(cfg)
		up.Namespace = ns
		up.MaxHistory = historyLimit(hr)
		up.Timeout = timeout(hr)
		up.Wait = hr.Spec.Wait
		up.Atomic = hr.Spec.Atomic
		up.SkipCRDs = hr.Spec.SkipCRDs
		// The values are exactly the overrides: nothing reused from the
		// previous revision (Helm would reuse them when none are given).
		up.ResetValues = true
		up.Labels = r.self().labels()
		rel, err := up.RunWithContext(ctx, name, ch, values)
		return r.result(cfg, name, res, rel, gen, err)
	case ActionInstall:
		if starting != nil {
			starting(release.StatusPendingInstall)
		}
		in := action.NewInstall(cfg)
		in.ReleaseName = name
		in.Namespace = ns
		in.CreateNamespace = hr.Spec.CreateNamespace == nil || *hr.Spec.CreateNamespace
		in.Timeout = timeout(hr)
		in.Wait = hr.Spec.Wait
		in.Atomic = hr.Spec.Atomic
		in.SkipCRDs = hr.Spec.SkipCRDs
		// An uninstalled release kept in history may be reused.
		in.Replace = last != nil
		in.Labels = r.self().labels()
		rel, err := in.RunWithContext(ctx, ch, values)
		return r.result(cfg, name, res, rel, gen, err)
	}
	return res, fmt.Errorf("unknown action %q", d.Action)
}

func (r *Releaser) configure(ctx context.Context, cluster *Cluster, namespace string) (*action.Configuration, error) {
	if r.Configure != nil {
		return r.Configure(ctx, cluster, namespace)
	}
	return Configuration(ctx, cluster, namespace)
}

func (r *Releaser) retryAfter() time.Duration {
	if r.RetryAfter > 0 {
		return r.RetryAfter
	}
	return DefaultRetryAfter
}

// result is the status after an install or upgrade: Helm's view of the
// release it returned, or the error with the newest revision.
func (r *Releaser) result(cfg *action.Configuration, name string, res Result, rel *release.Release, gen int64, err error) (Result, error) {
	if err == nil {
		res.Status = StatusFromRelease(rel, gen)
		return res, nil
	}
	last, lerr := cfg.Releases.Last(name)
	if lerr != nil {
		last = nil
	}
	res.Status = FailedStatus(last, gen, err)
	return res, err
}

// Uninstall removes hr's release from cluster; a release that is not there
// is already uninstalled.
func (r *Releaser) Uninstall(ctx context.Context, cluster *Cluster, hr *appsv1alpha1.HelmRelease) error {
	name, ns := ReleaseName(hr), hr.Spec.TargetNamespace
	cfg, err := r.configure(ctx, cluster, ns)
	if err != nil {
		return err
	}
	un := action.NewUninstall(cfg)
	un.Timeout = timeout(hr)
	un.Wait = hr.Spec.Wait
	if _, err := un.Run(name); err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
		return fmt.Errorf("uninstalling release %s/%s: %w", ns, name, err)
	}
	return nil
}
