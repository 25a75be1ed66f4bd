package helm

import (
	"context"
	"fmt"
	"slices"
	"time"

	"helm.sh/helm/v3/pkg/release"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/controller"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	appsinformers "github.com/clusternet/clusternet/pkg/generated/informers/externalversions/apps/v1alpha1"
	appslisters "github.com/clusternet/clusternet/pkg/generated/listers/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/metrics"
)

var everything = labels.Everything()

// TargetState says whether this process acts on a HelmRelease's cluster.
type TargetState int

// The target states.
const (
	// TargetSkip: another process applies this release (the hub or the
	// agent, or another hub replica holding the tunnel): leave it alone.
	TargetSkip TargetState = iota
	// TargetAct: this process applies the release, to the returned cluster.
	TargetAct
	// TargetGone: the cluster is no longer managed (no ManagedCluster in the
	// namespace): nothing can be uninstalled, and a deleted HelmRelease may go.
	TargetGone
)

// Targeter picks the cluster a HelmRelease is applied to, when this process
// is the one that applies it.
type Targeter interface {
	Target(hr *appsv1alpha1.HelmRelease) (*Cluster, TargetState, string)
}

// Event reasons on HelmReleases.
const (
	ReasonInstalled       = "Installed"
	ReasonUpgraded        = "Upgraded"
	ReasonInstallFailed   = "InstallFailed"
	ReasonUpgradeFailed   = "UpgradeFailed"
	ReasonUninstalled     = "Uninstalled"
	ReasonUninstallFailed = "UninstallFailed"
	// ReasonNotVerified: a Verifier refused the HelmRelease; nothing was
	// installed, upgraded or uninstalled for it.
	ReasonNotVerified = "NotVerified"
)

// Verifier decides whether a process may act on a HelmRelease at all. The
// hub has one: it acts in the child as the cluster's agent and reads
// Secrets of the parent as itself, so it acts only on the HelmReleases it
// made, never on whatever the agent (which may write anything in its
// dedicated namespace) or anyone else writes there.
type Verifier interface {
	// Verify returns "" when hr may be applied (or, being deleted,
	// uninstalled), or why not. An error is a failure to find out, retried.
	Verify(ctx context.Context, hr *appsv1alpha1.HelmRelease) (refusal string, err error)
}

// ReleaseController installs, upgrades and uninstalls the releases of
// HelmReleases in child clusters. The hub runs one for the clusters it
// pushes to, each agent one for its own cluster when it pulls; a Targeter
// tells them apart.
type ReleaseController struct {
	// Deployer names who applies ("clusternet-hub", "clusternet-agent"),
	// in events.
	Deployer string
	client   versioned.Interface
	kube     kubernetes.Interface
	lister   appslisters.HelmReleaseLister
	releaser *Releaser
	targets  Targeter
	events   record.EventRecorder
	loop     *controller.Loop

	// Verifier, when set (before Run), must accept a HelmRelease before
	// anything is done for it. Nil accepts every HelmRelease the Targeter
	// gives to this process (the agent: its own dedicated namespace).
	Verifier Verifier
}

// NewReleaseController watches HelmReleases through informer; client
// updates them, kube reads their chart pull Secrets (only in the
// HelmRelease's own namespace).
func NewReleaseController(deployer string, client versioned.Interface, kube kubernetes.Interface,
	informer appsinformers.HelmReleaseInformer, releaser *Releaser, targets Targeter, events record.EventRecorder) (*ReleaseController, error) {
	c := &ReleaseController{
		Deployer: deployer,
		client:   client,
		kube:     kube,
		lister:   informer.Lister(),
		releaser: releaser,
		targets:  targets,
		events:   events,
	}
	c.loop = controller.New("helmrelease-"+deployer, c.sync)
	if err := c.loop.Watch(informer.Informer(), nil); err != nil {
		return nil, err
	}
	return c, nil
}

// Requeue looks at every HelmRelease in namespace again (its cluster's
// tunnel came up, or its ManagedCluster changed).
func (c *ReleaseController) Requeue(namespace string) {
	for _, key := range c.KeysIn(namespace) {
		c.loop.Add(key)
	}
}

// KeysIn are the keys of the HelmReleases in namespace.
func (c *ReleaseController) KeysIn(namespace string) []string {
	hrs, err := c.lister.HelmReleases(namespace).List(everything)
	if err != nil {
		return nil
	}
	keys := make([]string, 0, len(hrs))
	for _, hr := range hrs {
		keys = append(keys, hr.Namespace+"/"+hr.Name)
	}
	return keys
}

// Watch also queues the HelmReleases keys maps informer's objects to, and
// waits for informer to sync before working: what a Targeter reads must be
// synced, or a cluster would look gone.
func (c *ReleaseController) Watch(informer cache.SharedIndexInformer, keys func(obj any) []string, opts ...controller.WatchOption) error {
	return c.loop.Watch(informer, keys, opts...)
}

// Run works until ctx ends.
func (c *ReleaseController) Run(ctx context.Context, workers int) { c.loop.Run(ctx, workers) }

func (c *ReleaseController) sync(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	cached, err := c.lister.HelmReleases(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	hr := cached.DeepCopy()
	logger := klog.FromContext(ctx).WithValues("helmRelease", klog.KObj(hr))
	ctx = klog.NewContext(ctx, logger)
	cluster, state, why := c.targets.Target(hr)
	switch state {
	case TargetSkip:
		logger.V(4).Info("Not applying here", "why", why)
		return 0, nil
	case TargetGone:
		if hr.DeletionTimestamp != nil {
			logger.Info("Cluster is gone; releasing the HelmRelease without uninstalling", "why", why)
			return 0, c.removeFinalizer(ctx, hr)
		}
		return 0, nil
	}
	if c.Verifier != nil {
		refusal, err := c.Verifier.Verify(ctx, hr)
		if err != nil {
			return 0, err
		}
		if refusal != "" {
			return 0, c.refuse(ctx, hr, refusal)
		}
	}

	if hr.DeletionTimestamp != nil {
		if !controller.HasFinalizer(hr) {
			return 0, nil
		}
		if err := c.releaser.Uninstall(ctx, cluster, hr); err != nil {
			c.events.Event(hr, corev1.EventTypeWarning, ReasonUninstallFailed, err.Error())
			st := hr.Status
			st.Phase = release.StatusUninstalling.String()
			st.Description = err.Error()
			_ = c.updateStatus(ctx, hr, st)
			return 0, err
		}
		c.events.Eventf(hr, corev1.EventTypeNormal, ReasonUninstalled, "Uninstalled release %s/%s by %s", hr.Spec.TargetNamespace, ReleaseName(hr), c.Deployer)
		return 0, c.removeFinalizer(ctx, hr)
	}

	if controller.AddFinalizer(hr) {
		updated, err := c.client.AppsV1alpha1().HelmReleases(hr.Namespace).Update(ctx, hr, metav1.UpdateOptions{})
		if err != nil {
			return 0, err
		}
		hr = updated
	}

	creds, err := ReadCredentials(ctx, c.kube, hr.Spec.ChartPullSecret, "HelmRelease", hr.Namespace)
	if err != nil {
		st := hr.Status
		st.Phase = release.StatusFailed.String()
		st.Description = err.Error()
		st.ObservedGeneration = hr.Generation
		if uerr := c.updateStatus(ctx, hr, st); uerr != nil {
			return 0, uerr
		}
		return 0, err
	}

	starting := func(phase release.Status) {
		st := hr.Status
		st.Phase = phase.String()
		st.Description = fmt.Sprintf("%s by %s", map[release.Status]string{
			release.StatusPendingInstall: "Installing",
			release.StatusPendingUpgrade: "Upgrading",
		}[phase], c.Deployer)
		st.ObservedGeneration = hr.Generation
		if err := c.updateStatus(ctx, hr, st); err != nil {
			logger.V(2).Info("Could not report the pending phase", "err", err)
		}
	}
	applyStart := time.Now()
	res, applyErr := c.releaser.Apply(ctx, cluster, hr, creds, starting)
	if res.Decision.Action == ActionInstall || res.Decision.Action == ActionUpgrade || res.Decision.Action == ActionRecover {
		metrics.Deployed(metrics.HelmDeployer, applyStart, applyErr)
	}
	if err := c.updateStatus(ctx, hr, res.Status); err != nil && applyErr == nil {
		return 0, err
	}
	c.record(hr, res, applyErr)
	if applyErr != nil {
		return 0, applyErr
	}
	return res.Decision.After, nil
}

// refuse leaves a HelmRelease the Verifier refused alone: no install,
// upgrade, Secret read or status write. One being deleted is let go (its
// finalizer removed) without uninstalling anything, so that it does not
// stay forever.
func (c *ReleaseController) refuse(ctx context.Context, hr *appsv1alpha1.HelmRelease, why string) error {
	logger := klog.FromContext(ctx)
	if hr.DeletionTimestamp == nil {
		logger.Info("Not applying an unverified HelmRelease", "why", why)
		c.events.Eventf(hr, corev1.EventTypeWarning, ReasonNotVerified, "%s does not apply this HelmRelease: %s", c.Deployer, why)
		return nil
	}
	if !controller.HasFinalizer(hr) {
		return nil
	}
	logger.Info("Letting an unverified HelmRelease go without uninstalling", "why", why)
	c.events.Eventf(hr, corev1.EventTypeWarning, ReasonNotVerified, "%s lets this HelmRelease go without uninstalling release %s/%s: %s; if that release should go, uninstall it in the child (helm uninstall -n %s %s)",
		c.Deployer, hr.Spec.TargetNamespace, ReleaseName(hr), why, hr.Spec.TargetNamespace, ReleaseName(hr))
	return c.removeFinalizer(ctx, hr)
}

func (c *ReleaseController) record(hr *appsv1alpha1.HelmRelease, res Result, err error) {
	where := fmt.Sprintf("release %s/%s", hr.Spec.TargetNamespace, ReleaseName(hr))
	switch {
	case res.Decision.Action == ActionInstall && err == nil:
		c.events.Eventf(hr, corev1.EventTypeNormal, ReasonInstalled, "Installed chart %s version %s as %s revision %d by %s",
			hr.Spec.Chart, res.ChartVersion, where, res.Status.Version, c.Deployer)
	case res.Decision.Action == ActionInstall:
		c.events.Eventf(hr, corev1.EventTypeWarning, ReasonInstallFailed, "Installing %s by %s failed: %v", where, c.Deployer, err)
	case (res.Decision.Action == ActionUpgrade || res.Decision.Action == ActionRecover) && err == nil:
		c.events.Eventf(hr, corev1.EventTypeNormal, ReasonUpgraded, "Upgraded %s to revision %d (%s) by %s", where, res.Status.Version, res.Decision.Why, c.Deployer)
	case res.Decision.Action == ActionUpgrade || res.Decision.Action == ActionRecover:
		c.events.Eventf(hr, corev1.EventTypeWarning, ReasonUpgradeFailed, "Upgrading %s (%s) by %s failed: %v", where, res.Decision.Why, c.Deployer, err)
	case err != nil:
		c.events.Eventf(hr, corev1.EventTypeWarning, ReasonInstallFailed, "Applying %s by %s failed: %v", where, c.Deployer, err)
	}
}

func (c *ReleaseController) updateStatus(ctx context.Context, hr *appsv1alpha1.HelmRelease, st appsv1alpha1.HelmReleaseStatus) error {
	if equality.Semantic.DeepEqual(hr.Status, st) {
		return nil
	}
	hr.Status = st
	updated, err := c.client.AppsV1alpha1().HelmReleases(hr.Namespace).UpdateStatus(ctx, hr, metav1.UpdateOptions{})
	if err != nil {
		return err
	}
	*hr = *updated
	return nil
}

func (c *ReleaseController) removeFinalizer(ctx context.Context, hr *appsv1alpha1.HelmRelease) error {
	i := slices.Index(hr.Finalizers, appsv1alpha1.Finalizer)
	if i < 0 {
		return nil
	}
	hr.Finalizers = slices.Delete(hr.Finalizers, i, i+1)
	_, err := c.client.AppsV1alpha1().HelmReleases(hr.Namespace).Update(ctx, hr, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
