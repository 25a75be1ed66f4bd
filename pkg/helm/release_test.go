package helm_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/kube"
	kubefake "helm.sh/helm/v3/pkg/kube/fake"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/helm"
	"github.com/clusternet/clusternet/test/helmrepo"
)

// memoryCluster keeps releases in memory and fakes the cluster's API, so
// that Releaser.Apply runs Helm's real install/upgrade/uninstall actions.
type memoryCluster struct {
	mu       sync.Mutex
	releases map[string]*storage.Storage // by namespace
	// failErr makes creating and updating objects fail.
	failErr error
	// failNextUpdate makes the next update of objects fail, once.
	failNextUpdate error
	// blockNextUpdate, when set, holds the next update of objects until it
	// is closed, as a process killed mid-operation never finishes it.
	blockNextUpdate chan struct{}
}

// onceFailingClient fails one update when its cluster says so.
type onceFailingClient struct {
	*kubefake.FailingKubeClient
	m *memoryCluster
}

func (c *onceFailingClient) Update(original, target kube.ResourceList, force bool) (*kube.Result, error) {
	c.m.mu.Lock()
	err, block := c.m.failNextUpdate, c.m.blockNextUpdate
	c.m.failNextUpdate, c.m.blockNextUpdate = nil, nil
	c.m.mu.Unlock()
	if block != nil {
		<-block
	}
	if err != nil {
		return &kube.Result{}, err
	}
	return c.FailingKubeClient.Update(original, target, force)
}

func (m *memoryCluster) configure(_ context.Context, _ *helm.Cluster, ns string) (*action.Configuration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.releases == nil {
		m.releases = map[string]*storage.Storage{}
	}
	if m.releases[ns] == nil {
		d := driver.NewMemory()
		d.SetNamespace(ns)
		m.releases[ns] = storage.Init(d)
	}
	return &action.Configuration{
		Releases: m.releases[ns],
		KubeClient: &onceFailingClient{m: m, FailingKubeClient: &kubefake.FailingKubeClient{
			PrintingKubeClient: kubefake.PrintingKubeClient{Out: io.Discard}, CreateError: m.failErr, UpdateError: m.failErr}},
		Capabilities: chartutil.DefaultCapabilities,
		Log:          func(string, ...any) {},
	}, nil
}

func (m *memoryCluster) history(t *testing.T, ns, name string) []string {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	revs, err := m.releases[ns].History(name)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(revs, func(a, b *release.Release) int { return a.Version - b.Version })
	out := make([]string, 0, len(revs))
	for _, r := range revs {
		out = append(out, r.Chart.Metadata.Version+" "+r.Info.Status.String())
	}
	return out
}

// revisions lists name's revisions as "version status applier/instance".
func (m *memoryCluster) revisions(t *testing.T, ns, name string) []string {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	revs, err := m.releases[ns].History(name)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(revs, func(a, b *release.Release) int { return a.Version - b.Version })
	out := make([]string, 0, len(revs))
	for _, r := range revs {
		out = append(out, fmt.Sprintf("%d %s %s/%s", r.Version, r.Info.Status, r.Labels[helm.LabelApplier], r.Labels[helm.LabelApplierInstance]))
	}
	return out
}

func helmRelease(repoURL, version string, generation int64) *appsv1alpha1.HelmRelease {
	return &appsv1alpha1.HelmRelease{
		ObjectMeta: metav1.ObjectMeta{Name: "sub-demo", Namespace: "clusternet-abcde", Generation: generation},
		Spec: appsv1alpha1.HelmReleaseSpec{
			HelmOptions: appsv1alpha1.HelmOptions{
				Repository: repoURL, Chart: "demo", ChartVersion: version, TargetNamespace: "apps",
				HistoryLimit: ptr.To[int32](2),
			},
		},
	}
}

func TestReleaserApply(t *testing.T) {
	repo := helmrepo.NewRepo(t)
	for _, v := range []string{"0.1.0", "0.2.0"} {
		repo.Add(t, helmrepo.DemoChart("demo", v))
	}
	mem := &memoryCluster{}
	clock := time.Now()
	r := &helm.Releaser{Source: helm.NewSource(), Configure: mem.configure, Now: func() time.Time { return clock }}
	ctx := context.Background()

	type step struct {
		name       string
		hr         *appsv1alpha1.HelmRelease
		failErr    error
		wantAction helm.Action
		wantErr    string
		wantStatus appsv1alpha1.HelmReleaseStatus
		wantHist   []string
		starting   []release.Status
	}
	withValues := func(hr *appsv1alpha1.HelmRelease, v string) *appsv1alpha1.HelmRelease {
		hr.Spec.Overrides = []byte(v)
		return hr
	}
	steps := []step{
		{name: "install", hr: helmRelease(repo.URL, "0.1.0", 1), wantAction: helm.ActionInstall,
			starting:   []release.Status{release.StatusPendingInstall},
			wantStatus: appsv1alpha1.HelmReleaseStatus{Phase: "deployed", Version: 1, Description: "Install complete", Notes: "demo 0.1.0 is installed as sub-demo.", ObservedGeneration: 1},
			wantHist:   []string{"0.1.0 deployed"}},
		{name: "nothing changed", hr: helmRelease(repo.URL, "0.1.0", 1), wantAction: helm.ActionNone,
			wantStatus: appsv1alpha1.HelmReleaseStatus{Phase: "deployed", Version: 1, Description: "Install complete", Notes: "demo 0.1.0 is installed as sub-demo.", ObservedGeneration: 1},
			wantHist:   []string{"0.1.0 deployed"}},
		{name: "version bump upgrades", hr: helmRelease(repo.URL, "0.2.0", 2), wantAction: helm.ActionUpgrade,
			starting:   []release.Status{release.StatusPendingUpgrade},
			wantStatus: appsv1alpha1.HelmReleaseStatus{Phase: "deployed", Version: 2, Description: "Upgrade complete", Notes: "demo 0.2.0 is installed as sub-demo.", ObservedGeneration: 2},
			wantHist:   []string{"0.1.0 superseded", "0.2.0 deployed"}},
		{name: "values change upgrades, history is limited", hr: withValues(helmRelease(repo.URL, "0.2.0", 3), `{"message":"hi"}`), wantAction: helm.ActionUpgrade,
			starting:   []release.Status{release.StatusPendingUpgrade},
			wantStatus: appsv1alpha1.HelmReleaseStatus{Phase: "deployed", Version: 3, Description: "Upgrade complete", Notes: "demo 0.2.0 is installed as sub-demo.", ObservedGeneration: 3},
			wantHist:   []string{"0.2.0 superseded", "0.2.0 deployed"}},
		{name: "a failing upgrade reports Helm's message", hr: withValues(helmRelease(repo.URL, "0.2.0", 4), `{"message":"boom"}`),
			failErr: errors.New("admission webhook denied the request"), wantAction: helm.ActionUpgrade,
			starting: []release.Status{release.StatusPendingUpgrade},
			wantErr:  `admission webhook denied the request`,
			wantStatus: appsv1alpha1.HelmReleaseStatus{Phase: "failed", Version: 4, Notes: "demo 0.2.0 is installed as sub-demo.", ObservedGeneration: 4,
				Description: `admission webhook denied the request`},
			wantHist: []string{"0.2.0 deployed", "0.2.0 failed"}},
		{name: "the failed revision is not retried at once", hr: withValues(helmRelease(repo.URL, "0.2.0", 4), `{"message":"boom"}`), wantAction: helm.ActionNone,
			wantStatus: appsv1alpha1.HelmReleaseStatus{Phase: "failed", Version: 4, Notes: "demo 0.2.0 is installed as sub-demo.", ObservedGeneration: 4,
				Description: `Upgrade "sub-demo" failed: admission webhook denied the request`},
			wantHist: []string{"0.2.0 deployed", "0.2.0 failed"}},
		{name: "a fixed spec upgrades again", hr: withValues(helmRelease(repo.URL, "0.2.0", 5), `{"message":"fixed"}`), wantAction: helm.ActionUpgrade,
			starting:   []release.Status{release.StatusPendingUpgrade},
			wantStatus: appsv1alpha1.HelmReleaseStatus{Phase: "deployed", Version: 5, Description: "Upgrade complete", Notes: "demo 0.2.0 is installed as sub-demo.", ObservedGeneration: 5},
			// Helm keeps the last deployed revision before the failed one.
			wantHist: []string{"0.2.0 superseded", "0.2.0 deployed"}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			mem.failErr = s.failErr
			var started []release.Status
			res, err := r.Apply(ctx, nil, s.hr, nil, func(p release.Status) { started = append(started, p) })
			if s.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), s.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, s.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if res.Decision.Action != s.wantAction {
				t.Errorf("action %s (%s), want %s", res.Decision.Action, res.Decision.Why, s.wantAction)
			}
			st := res.Status
			if s.wantErr != "" && strings.Contains(st.Description, s.wantErr) {
				st.Description = s.wantErr
			}
			if diff := cmp.Diff(s.wantStatus, st); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(s.starting, started); diff != "" {
				t.Errorf("pending phases reported (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(s.wantHist, mem.history(t, "apps", "sub-demo")); diff != "" {
				t.Errorf("history (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("uninstall removes every revision, twice is fine", func(t *testing.T) {
		hr := helmRelease(repo.URL, "0.2.0", 5)
		for range 2 {
			if err := r.Uninstall(ctx, nil, hr); err != nil {
				t.Fatal(err)
			}
		}
		if got := mem.history(t, "apps", "sub-demo"); len(got) != 0 {
			t.Fatalf("history after uninstall: %v", got)
		}
	})

	t.Run("a failed atomic upgrade is rolled back and reported failed", func(t *testing.T) {
		hr := helmRelease(repo.URL, "0.1.0", 1)
		hr.Spec.ReleaseName = ptr.To("atomic")
		hr.Spec.Atomic = true
		hr.Spec.HistoryLimit = nil
		if _, err := r.Apply(ctx, nil, hr, nil, nil); err != nil {
			t.Fatal(err)
		}
		hr = hr.DeepCopy()
		hr.Spec.ChartVersion, hr.Generation = "0.2.0", 2
		mem.mu.Lock()
		mem.failNextUpdate = errors.New("quota exceeded")
		mem.mu.Unlock()
		res, err := r.Apply(ctx, nil, hr, nil, nil)
		if err == nil || !strings.Contains(err.Error(), "has been rolled back due to atomic being set") {
			t.Fatalf("error %v", err)
		}
		if res.Status.Phase != "failed" || res.Status.Version != 3 {
			t.Errorf("status %+v, want failed at revision 3 (the rollback)", res.Status)
		}
		if diff := cmp.Diff([]string{"0.1.0 superseded", "0.2.0 failed", "0.1.0 deployed"}, mem.history(t, "apps", "atomic")); diff != "" {
			t.Errorf("history (-want +got):\n%s", diff)
		}
		// Looked at again: the upgrade is not tried again at once, and the
		// status still says it failed.
		res, err = r.Apply(ctx, nil, hr, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := appsv1alpha1.HelmReleaseStatus{Phase: "failed", Version: 3, ObservedGeneration: 2, Notes: "demo 0.1.0 is installed as atomic.",
			Description: `Upgrade "atomic" failed: quota exceeded (revision 2; rolled back to revision 3)`}
		if res.Decision.Action != helm.ActionNone {
			t.Errorf("action %s (%s), want None", res.Decision.Action, res.Decision.Why)
		}
		if diff := cmp.Diff(want, res.Status); diff != "" {
			t.Errorf("status (-want +got):\n%s", diff)
		}
	})

	t.Run("a release name of its own", func(t *testing.T) {
		hr := helmRelease(repo.URL, "0.1.0", 1)
		hr.Spec.ReleaseName = ptr.To("mine")
		if _, err := r.Apply(ctx, nil, hr, nil, nil); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"0.1.0 deployed"}, mem.history(t, "apps", "mine")); diff != "" {
			t.Error(diff)
		}
	})

	t.Run("an unknown version is a failed status naming the fix", func(t *testing.T) {
		hr := helmRelease(repo.URL, "9.9.9", 7)
		hr.Name = "other"
		res, err := r.Apply(ctx, nil, hr, nil, nil)
		if err == nil {
			t.Fatal("no error")
		}
		want := appsv1alpha1.HelmReleaseStatus{Phase: "failed", ObservedGeneration: 7,
			Description: `chart "demo" has no version "9.9.9" in "` + repo.URL + `"; newest available: 0.2.0, 0.1.0: set spec.version to one of them`}
		if diff := cmp.Diff(want, res.Status); diff != "" {
			t.Errorf("status (-want +got):\n%s", diff)
		}
	})
}

// A release left pending by a process that is gone (killed mid-upgrade) is
// taken over at once by the next process of the same component, and only
// by it: the same process, another component or a revision without labels
// (the helm CLI) waits out the operation's timeout, as the operation may
// still be running.
func TestReleaserPendingRevisionOfAGoneProcess(t *testing.T) {
	repo := helmrepo.NewRepo(t)
	for _, v := range []string{"0.1.0", "0.2.0"} {
		repo.Add(t, helmrepo.DemoChart("demo", v))
	}
	mem := &memoryCluster{}
	clock := time.Now()
	process := func(component, instance string) *helm.Releaser {
		return &helm.Releaser{Source: helm.NewSource(), Configure: mem.configure, Now: func() time.Time { return clock },
			Applier: component, Instance: instance}
	}
	ctx := context.Background()
	hr := func(version string, generation int64) *appsv1alpha1.HelmRelease {
		hr := helmRelease(repo.URL, version, generation)
		hr.Spec.HistoryLimit = nil // keep every revision, to see each one's fate
		return hr
	}
	first := process("clusternet-agent", "first")
	if _, err := first.Apply(ctx, nil, hr("0.1.0", 1), nil, nil); err != nil {
		t.Fatal(err)
	}

	// The first process's upgrade never finishes.
	unblock := make(chan struct{})
	mem.mu.Lock()
	mem.blockNextUpdate = unblock
	mem.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = first.Apply(ctx, nil, hr("0.2.0", 2), nil, nil)
	}()
	t.Cleanup(func() { close(unblock); <-done })
	pending := []string{"1 deployed clusternet-agent/first", "2 pending-upgrade clusternet-agent/first"}
	for deadline := time.Now().Add(10 * time.Second); !slices.Equal(mem.revisions(t, "apps", "sub-demo"), pending); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("revisions %v, want %v", mem.revisions(t, "apps", "sub-demo"), pending)
		}
	}

	for _, r := range []*helm.Releaser{process("clusternet-agent", "first"), process("clusternet-hub", "other"), process("", "")} {
		res, err := r.Apply(ctx, nil, hr("0.2.0", 2), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Decision.Action != helm.ActionWait {
			t.Errorf("%s/%s: action %s (%s), want Wait", r.Applier, r.Instance, res.Decision.Action, res.Decision.Why)
		}
	}
	if got := mem.revisions(t, "apps", "sub-demo"); !slices.Equal(got, pending) {
		t.Fatalf("revisions changed by a process that had to wait: %v", got)
	}

	res, err := process("clusternet-agent", "second").Apply(ctx, nil, hr("0.2.0", 2), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantWhy := "revision 2 is pending-upgrade, started by clusternet-agent instance first, which is gone: taking it for interrupted"
	if res.Decision.Action != helm.ActionRecover || res.Decision.Why != wantWhy {
		t.Errorf("decision %s (%s), want Recover (%s)", res.Decision.Action, res.Decision.Why, wantWhy)
	}
	if res.Status.Phase != "deployed" || res.Status.Version != 3 {
		t.Errorf("status %+v, want deployed at revision 3", res.Status)
	}
	want := []string{"1 superseded clusternet-agent/first", "2 failed clusternet-agent/first", "3 deployed clusternet-agent/second"}
	if got := mem.revisions(t, "apps", "sub-demo"); !slices.Equal(got, want) {
		t.Errorf("revisions %v, want %v", got, want)
	}
}

func TestReleaseName(t *testing.T) {
	long := strings.Repeat("a", 60)
	sum := sha256.Sum256([]byte(long))
	tests := []struct {
		name string
		hr   *appsv1alpha1.HelmRelease
		want string
	}{
		{name: "the HelmRelease's name", hr: &appsv1alpha1.HelmRelease{ObjectMeta: metav1.ObjectMeta{Name: "helm-demo-mysql"}}, want: "helm-demo-mysql"},
		{name: "spec.releaseName", hr: &appsv1alpha1.HelmRelease{ObjectMeta: metav1.ObjectMeta{Name: "x"}, Spec: appsv1alpha1.HelmReleaseSpec{ReleaseName: ptr.To("y")}}, want: "y"},
		{name: "too long for Helm: start and hash, 53 characters", hr: &appsv1alpha1.HelmRelease{ObjectMeta: metav1.ObjectMeta{Name: long}},
			want: strings.Repeat("a", 44) + "-" + hex.EncodeToString(sum[:])[:8]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := helm.ReleaseName(tc.hr)
			if got != tc.want || len(got) > 53 {
				t.Fatalf("ReleaseName = %q, want %q", got, tc.want)
			}
		})
	}
}
