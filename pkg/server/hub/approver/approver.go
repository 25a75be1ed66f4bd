// Package approver answers ClusterRegistrationRequests: it gives each child
// cluster a dedicated namespace, a ManagedCluster, a ServiceAccount with only
// the rights its agent uses, and a bound, expiring token for it, sealed to the
// key the agent put in its request so that no other reader of the request can
// use it. It renews that token before it expires.
package approver

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/controller"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	clusterinformers "github.com/clusternet/clusternet/pkg/generated/informers/externalversions/clusters/v1beta1"
	clusterlisters "github.com/clusternet/clusternet/pkg/generated/listers/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/metrics"
	"github.com/clusternet/clusternet/pkg/registration"
)

// Names of what the approver creates, as upstream Clusternet's README shows them.
const (
	// ManagedClusterRole is the Role in each dedicated namespace.
	ManagedClusterRole = "clusternet-managedcluster-role"
	// AgentServiceAccount is the identity of a child's agent in its dedicated namespace.
	AgentServiceAccount = "clusternet-agent"
	// legacyTokenSecret is the long-lived token Secret earlier versions made;
	// it never expires, so the approver deletes it where it finds it.
	legacyTokenSecret = "clusternet-agent-token"
	registeredByAgent = "clusternet-agent"
)

// Approval says who approves registrations.
type Approval string

// The approval modes of --registration-approval.
const (
	// AutoApproval approves every valid request (upstream Clusternet's flow).
	AutoApproval Approval = "auto"
	// ManualApproval waits for an admin to set status.result=Approved
	// (kubectl clusternet approve).
	ManualApproval Approval = "manual"
)

// Options are the hub flags that shape registration.
type Options struct {
	Approval Approval
	// TokenTTL is how long an agent's token lives; it is renewed when half
	// of it is left.
	TokenTTL time.Duration
	// RegistrationsPerMinute bounds how many new clusters are admitted
	// (namespace, ServiceAccount, RBAC, token each); more wait their turn.
	// Whoever holds the shared bootstrap token can ask for any number.
	RegistrationsPerMinute int
	// Workers is how many requests the approver answers at once, at least
	// (the hub's --workers raises it, never lowers it).
	Workers int
}

// DefaultOptions are the hub's defaults: auto-approval and 7-day tokens,
// long enough for an edge cluster to ride out a week offline.
//
// 1,200 registrations a minute (bursts of 120) admit a fleet of 1,000
// agents installed at once within a minute, and still bound what a holder
// of the bootstrap token can make the parent create. 16 workers: a sync
// spends its time waiting on a dozen round trips to the parent one after
// another, so the hub's --workers (then 2) answered 1.15 clusters a second;
// workers are goroutines, and the parent is protected by the hub's client
// QPS and the admission rate, not by how few syncs wait at once.
func DefaultOptions() Options {
	return Options{Approval: AutoApproval, TokenTTL: 7 * 24 * time.Hour, RegistrationsPerMinute: 1200, Workers: 16}
}

// Controller approves registration requests.
type Controller struct {
	*controller.Loop
	opts       Options
	kube       kubernetes.Interface
	clusternet versioned.Interface
	crrLister  clusterlisters.ClusterRegistrationRequestLister
	clock      clock.PassiveClock
	// admissions paces new registrations; renewals of admitted ones are
	// not counted.
	admissions *rate.Limiter
	// answered is, per request, the resourceVersion of the status this
	// process last wrote: see ownAnswer.
	answered sync.Map
	// names serialises the requests asking for one cluster name (by a hash
	// of it) from the check that the name is free to the ManagedCluster
	// that takes it: with workers answering at once, two requests for one
	// name would both find it free and both take it, and a Subscription
	// selecting that name would bind a cluster anyone with the bootstrap
	// token registered. The approver runs in the leader only, so a lock in
	// this process is the whole of it.
	names [64]sync.Mutex
	// ca is the parent's CA bundle as last read (rootCA).
	ca caBundle
	// legacyGone holds the dedicated namespaces where no legacy token
	// Secret can be left (ensureRBAC).
	legacyGone sync.Map
}

// lockName holds the lock of a requested cluster name; none for no name (a
// generated one cannot collide).
func (c *Controller) lockName(name string) (unlock func()) {
	if name == "" {
		return func() {}
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	mu := &c.names[h.Sum32()%uint32(len(c.names))]
	mu.Lock()
	return mu.Unlock
}

// New returns an approver fed by the given ClusterRegistrationRequest informer.
func New(kube kubernetes.Interface, clusternet versioned.Interface, crrs clusterinformers.ClusterRegistrationRequestInformer, opts Options) (*Controller, error) {
	c := &Controller{opts: opts, kube: kube, clusternet: clusternet, crrLister: crrs.Lister(), clock: clock.RealClock{},
		admissions: rate.NewLimiter(rate.Limit(float64(opts.RegistrationsPerMinute)/60), max(1, opts.RegistrationsPerMinute/10))}
	c.Loop = controller.New("cluster-registration", c.countedSync)
	// Deletes are queued too: sync finds nothing in the cache and does nothing.
	return c, c.Watch(crrs.Informer(), nil)
}

// Run answers requests with Options.Workers workers, or workers (the hub's
// --workers) when that is more, until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	c.Loop.Run(ctx, max(workers, c.opts.Workers))
}

// sync brings one request to its answer, and keeps an approved one's RBAC
// and token current. Every step finds what an earlier, interrupted run made
// (by the cluster-id label) before creating anything, so a hub restart at
// any point leaves no duplicates.
func (c *Controller) sync(ctx context.Context, name string) (time.Duration, error) {
	crr, err := c.crrLister.Get(name)
	if apierrors.IsNotFound(err) {
		c.answered.Delete(name)
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	result := clusterv1beta1.RequestPending
	if crr.Status.Result != nil {
		result = *crr.Status.Result
	}
	if result == clusterv1beta1.RequestDenied {
		return 0, nil
	}
	if renewIn := c.tokenFreshFor(crr); renewIn > 0 && c.ownAnswer(crr) {
		return renewIn, nil
	}
	logger := klog.FromContext(ctx).WithValues("request", name, "clusterID", crr.Spec.ClusterID)

	// Held until the cluster's ManagedCluster carries the name (or the
	// request is refused): the rest of the answer can run alongside others.
	unlockName := c.lockName(crr.Spec.ClusterName)
	defer func() { unlockName() }()
	if reason, err := c.refusal(ctx, crr); err != nil {
		return 0, err
	} else if reason != "" {
		logger.Info("Denying registration", "reason", reason)
		return 0, c.writeStatus(ctx, crr, clusterv1beta1.ClusterRegistrationRequestStatus{
			Result: ptr(clusterv1beta1.RequestDenied), ErrorMessage: reason,
		})
	}
	if c.opts.Approval == ManualApproval && result != clusterv1beta1.RequestApproved {
		return 0, c.awaitAdmin(ctx, crr)
	}
	if len(crr.Status.SealedToken) == 0 {
		if wait := c.admissionWait(); wait > 0 {
			logger.V(2).Info("Registration waits for the rate limit", "retryIn", wait)
			return wait, nil
		}
	}

	rootCA := func() ([]byte, error) { return c.rootCA(ctx) }
	if c.tokenFreshFor(crr) <= 0 {
		// A token will be issued: its CA bundle is read while the cluster's
		// objects are made, since nothing else depends on it.
		rootCA = background(rootCA)
	}
	ns, err := c.ensureNamespace(ctx, crr)
	if err != nil {
		return 0, fmt.Errorf("dedicated namespace: %w", err)
	}
	mcls, err := c.ensureManagedCluster(ctx, crr, ns)
	if err != nil {
		return 0, fmt.Errorf("ManagedCluster: %w", err)
	}
	unlockName()
	unlockName = func() {}
	if err := c.ensureRBAC(ctx, crr, ns, mcls); err != nil {
		return 0, fmt.Errorf("RBAC: %w", err)
	}
	if renewIn := c.tokenFreshFor(crr); renewIn > 0 && crr.Status.DedicatedNamespace == ns && crr.Status.ManagedClusterName == mcls {
		return renewIn, nil
	}
	status, err := c.issueToken(ctx, crr, ns, rootCA)
	if err != nil {
		return 0, fmt.Errorf("agent token: %w", err)
	}
	status.Result = ptr(clusterv1beta1.RequestApproved)
	status.DedicatedNamespace, status.ManagedClusterName = ns, mcls
	if result != clusterv1beta1.RequestApproved {
		logger.Info("Approved registration", "namespace", ns, "managedCluster", mcls)
	} else {
		logger.V(2).Info("Renewed the agent's token", "namespace", ns, "expires", status.TokenExpirationTimestamp)
	}
	if err := c.writeStatus(ctx, crr, *status); err != nil {
		return 0, err
	}
	return c.opts.TokenTTL / 2, nil
}

// admissionWait is how long a new registration must wait for its turn under
// --registrations-per-minute; zero lets it through now.
func (c *Controller) admissionWait() time.Duration {
	r := c.admissions.ReserveN(c.clock.Now(), 1)
	if !r.OK() {
		return time.Minute
	}
	wait := r.DelayFrom(c.clock.Now())
	if wait > 0 {
		r.CancelAt(c.clock.Now()) // it comes back and asks again
	}
	return wait
}

// awaitAdmin marks a request Pending, saying how to answer it, once.
func (c *Controller) awaitAdmin(ctx context.Context, crr *clusterv1beta1.ClusterRegistrationRequest) error {
	msg := fmt.Sprintf("waiting for an admin: the hub runs with --registration-approval=manual; "+
		"approve with 'kubectl clusternet approve %[1]s' or deny with 'kubectl clusternet deny %[1]s'", crr.Name)
	if crr.Status.Result != nil && crr.Status.ErrorMessage == msg {
		return nil
	}
	klog.FromContext(ctx).Info("Registration waits for an admin's approval", "request", crr.Name)
	return c.writeStatus(ctx, crr, clusterv1beta1.ClusterRegistrationRequestStatus{
		Result: ptr(clusterv1beta1.RequestPending), ErrorMessage: msg,
	})
}

func (c *Controller) writeStatus(ctx context.Context, crr *clusterv1beta1.ClusterRegistrationRequest, status clusterv1beta1.ClusterRegistrationRequestStatus) error {
	answer := answerOf(crr.Status.Result, status.Result)
	crr = crr.DeepCopy()
	crr.Status = status
	written, err := c.clusternet.ClustersV1beta1().ClusterRegistrationRequests().UpdateStatus(ctx, crr, metav1.UpdateOptions{})
	if err != nil {
		return err
	}
	metrics.Registration(answer)
	if written.ResourceVersion != "" {
		c.answered.Store(written.Name, written.ResourceVersion)
	}
	return nil
}

// ownAnswer: the request is exactly as this process's last status write
// left it, so everything that write stood for was made a moment ago. The
// informer brings every answer back as an update; without this, each
// registration made its dozen requests to the parent twice. Any other
// change of the request (another version), and every request after a hub
// restart, is checked in full.
func (c *Controller) ownAnswer(crr *clusterv1beta1.ClusterRegistrationRequest) bool {
	rv, ok := c.answered.Load(crr.Name)
	return ok && crr.ResourceVersion != "" && rv == crr.ResourceVersion
}

// background runs f in its own goroutine; the returned func waits for its
// result.
func background[T any](f func() (T, error)) func() (T, error) {
	var v T
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		v, err = f()
	}()
	return func() (T, error) {
		<-done
		return v, err
	}
}

// answerOf is the result label (clusternet_registration_requests_total) of
// writing result over before: approving an approved request renews its token.
func answerOf(before, result *clusterv1beta1.ApprovedResult) string {
	switch {
	case result == nil:
		return metrics.RegistrationError
	case *result == clusterv1beta1.RequestDenied:
		return metrics.RegistrationDenied
	case *result == clusterv1beta1.RequestPending:
		return metrics.RegistrationPending
	case before != nil && *before == clusterv1beta1.RequestApproved:
		return metrics.RegistrationRenewed
	default:
		return metrics.RegistrationApproved
	}
}

// countedSync is sync, counting the answers that failed and are retried.
// Stale caches (conflicts) are retried quietly and not counted.
func (c *Controller) countedSync(ctx context.Context, name string) (time.Duration, error) {
	again, err := c.sync(ctx, name)
	if err != nil && !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) {
		metrics.Registration(metrics.RegistrationError)
	}
	return again, err
}

func clusterSelector(id string) string {
	return labels.Set{clusterv1beta1.LabelClusterID: id}.String()
}

// podSecurityLabels keep workloads out of dedicated namespaces: nothing of
// Clusternet runs pods there, so only the strictest profile is allowed.
var podSecurityLabels = map[string]string{
	"pod-security.kubernetes.io/enforce": "restricted",
	"pod-security.kubernetes.io/audit":   "restricted",
	"pod-security.kubernetes.io/warn":    "restricted",
}

// ensureNamespace finds the cluster's dedicated namespace by label, or makes
// one, and keeps its Pod Security labels. It asks the API server, not a
// cache, so a namespace made a moment ago by an interrupted run is found and
// not made twice.
func (c *Controller) ensureNamespace(ctx context.Context, crr *clusterv1beta1.ClusterRegistrationRequest) (string, error) {
	id := string(crr.Spec.ClusterID)
	list, err := c.kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: clusterSelector(id)})
	if err != nil {
		return "", err
	}
	if len(list.Items) > 0 {
		ns := &list.Items[0]
		if missing := missingLabels(ns.Labels, podSecurityLabels); len(missing) > 0 {
			ns = ns.DeepCopy()
			for k, v := range missing {
				ns.Labels[k] = v
			}
			if _, err := c.kube.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{}); err != nil {
				return "", err
			}
		}
		return ns.Name, nil
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Labels: map[string]string{
			clusterv1beta1.LabelClusterID: id,
			clusterv1beta1.LabelCreatedBy: registration.CreatedByHub,
		},
	}}
	for k, v := range podSecurityLabels {
		ns.Labels[k] = v
	}
	if crr.Spec.ClusterNamespace != "" {
		ns.Name = crr.Spec.ClusterNamespace
	} else {
		ns.GenerateName = clusterv1beta1.NamePrefix
	}
	created, err := c.kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	return created.Name, nil
}

func missingLabels(have, want map[string]string) map[string]string {
	missing := map[string]string{}
	for k, v := range want {
		if have[k] != v {
			missing[k] = v
		}
	}
	return missing
}

// ensureManagedCluster finds or makes the cluster's ManagedCluster. Labels
// the registration asks for are copied only when it is made: afterwards the
// labels are the parent's admins' to set, and a registration never
// overrides them.
func (c *Controller) ensureManagedCluster(ctx context.Context, crr *clusterv1beta1.ClusterRegistrationRequest, ns string) (string, error) {
	id := string(crr.Spec.ClusterID)
	mclsClient := c.clusternet.ClustersV1beta1().ManagedClusters(ns)
	list, err := mclsClient.List(ctx, metav1.ListOptions{LabelSelector: clusterSelector(id)})
	if err != nil {
		return "", err
	}
	if len(list.Items) > 0 {
		return list.Items[0].Name, nil
	}
	lbls := map[string]string{}
	for k, v := range crr.Spec.ClusterLabels {
		lbls[k] = v
	}
	lbls[clusterv1beta1.LabelClusterID] = id
	lbls[clusterv1beta1.LabelCreatedBy] = registeredByAgent
	mcls := &clusterv1beta1.ManagedCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Labels: lbls},
		Spec: clusterv1beta1.ManagedClusterSpec{
			ClusterID:   crr.Spec.ClusterID,
			ClusterType: crr.Spec.ClusterType,
			SyncMode:    crr.Spec.SyncMode,
		},
	}
	if crr.Spec.ClusterName != "" {
		mcls.Name = crr.Spec.ClusterName
		mcls.Labels[clusterv1beta1.LabelClusterName] = crr.Spec.ClusterName
	} else {
		mcls.GenerateName = "clusternet-cluster-"
	}
	created, err := mclsClient.Create(ctx, mcls, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	if created.Labels[clusterv1beta1.LabelClusterName] == "" {
		created.Labels[clusterv1beta1.LabelClusterName] = created.Name
		if _, err := mclsClient.Update(ctx, created, metav1.UpdateOptions{}); err != nil {
			return "", err
		}
	}
	return created.Name, nil
}

func ptr[T any](v T) *T { return &v }

// isReservedNamespace: namespaces a cluster may never be given, even when
// they do not exist yet, because Kubernetes or Clusternet give them meaning.
func isReservedNamespace(ns string) bool {
	switch ns {
	case "default", "clusternet-reserved", "clusternet-system":
		return true
	}
	return strings.HasPrefix(ns, "kube-")
}
