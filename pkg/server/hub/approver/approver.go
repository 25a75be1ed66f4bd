// Package approver answers ClusterRegistrationRequests: it gives each child
// cluster a dedicated namespace, a ManagedCluster, a ServiceAccount token and
// RBAC scoped to that cluster, then writes the credentials into the request's
// status for the agent to pick up.
package approver

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/controller"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	clusterinformers "github.com/clusternet/clusternet/pkg/generated/informers/externalversions/clusters/v1beta1"
	clusterlisters "github.com/clusternet/clusternet/pkg/generated/listers/clusters/v1beta1"
)

// Names of what the approver creates, as the seed README shows them.
const (
	// ManagedClusterRole is the Role in each dedicated namespace.
	ManagedClusterRole = "clusternet-managedcluster-role"
	// AgentServiceAccount is the identity of a child's agent in its dedicated namespace.
	AgentServiceAccount = "clusternet-agent"
	agentTokenSecret    = "clusternet-agent-token"
	createdByHub        = "clusternet-hub"
	registeredByAgent   = "clusternet-agent"
	// tokenWait bounds how long a request waits for the token controller to
	// fill the ServiceAccount token Secret before it is retried.
	tokenWait = 100 * time.Millisecond
)

// Controller approves registration requests.
type Controller struct {
	*controller.Loop
	kube       kubernetes.Interface
	clusternet versioned.Interface
	crrLister  clusterlisters.ClusterRegistrationRequestLister
}

// New returns an approver fed by the given ClusterRegistrationRequest informer.
func New(kube kubernetes.Interface, clusternet versioned.Interface, crrs clusterinformers.ClusterRegistrationRequestInformer) (*Controller, error) {
	c := &Controller{kube: kube, clusternet: clusternet, crrLister: crrs.Lister()}
	c.Loop = controller.New("cluster-registration", c.sync)
	// Deletes are queued too: sync finds nothing in the cache and does nothing.
	return c, c.Watch(crrs.Informer(), nil)
}

// sync brings one request to its answer. Every step finds what an earlier,
// interrupted run made (by the cluster-id label) before creating anything, so
// a hub restart at any point leaves no duplicates.
func (c *Controller) sync(ctx context.Context, name string) (time.Duration, error) {
	crr, err := c.crrLister.Get(name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if r := crr.Status.Result; r != nil && *r == clusterv1beta1.RequestDenied {
		return 0, nil
	}
	if r := crr.Status.Result; r != nil && *r == clusterv1beta1.RequestApproved && len(crr.Status.Token) > 0 {
		return 0, nil
	}
	logger := klog.FromContext(ctx).WithValues("request", name, "clusterID", crr.Spec.ClusterID)

	if want := clusterv1beta1.NamePrefix + string(crr.Spec.ClusterID); crr.Name != want {
		reason := fmt.Sprintf("metadata.name %q does not match spec.clusterId %q: a request must be named %q", crr.Name, crr.Spec.ClusterID, want)
		logger.Info("Denying registration", "reason", reason)
		return 0, c.writeStatus(ctx, crr, clusterv1beta1.ClusterRegistrationRequestStatus{
			Result: ptr(clusterv1beta1.RequestDenied), ErrorMessage: reason,
		})
	}

	ns, err := c.ensureNamespace(ctx, crr)
	if err != nil {
		return 0, fmt.Errorf("dedicated namespace: %w", err)
	}
	mcls, err := c.ensureManagedCluster(ctx, crr, ns)
	if err != nil {
		return 0, fmt.Errorf("ManagedCluster: %w", err)
	}
	newServiceAccount, err := c.ensureRBAC(ctx, crr, ns)
	if err != nil {
		return 0, fmt.Errorf("RBAC: %w", err)
	}
	if newServiceAccount {
		// kube-controller-manager fills a token Secret only once its cache
		// holds the ServiceAccount, and backs off, up to seconds, when the
		// Secret comes first: give its cache a moment.
		return tokenWait, nil
	}
	token, ca, err := c.ensureToken(ctx, ns)
	if err != nil {
		return 0, fmt.Errorf("ServiceAccount token: %w", err)
	}
	if token == nil {
		// The token controller has not filled the Secret yet.
		return tokenWait, nil
	}
	logger.Info("Approved registration", "namespace", ns, "managedCluster", mcls)
	return 0, c.writeStatus(ctx, crr, clusterv1beta1.ClusterRegistrationRequestStatus{
		Result:             ptr(clusterv1beta1.RequestApproved),
		Token:              token,
		CACertificate:      ca,
		DedicatedNamespace: ns,
		ManagedClusterName: mcls,
	})
}

func (c *Controller) writeStatus(ctx context.Context, crr *clusterv1beta1.ClusterRegistrationRequest, status clusterv1beta1.ClusterRegistrationRequestStatus) error {
	crr = crr.DeepCopy()
	crr.Status = status
	_, err := c.clusternet.ClustersV1beta1().ClusterRegistrationRequests().UpdateStatus(ctx, crr, metav1.UpdateOptions{})
	return err
}

func clusterSelector(id string) string {
	return labels.Set{clusterv1beta1.LabelClusterID: id}.String()
}

// ensureNamespace finds the cluster's dedicated namespace by label, or makes
// one. It asks the API server, not a cache, so a namespace made a moment ago
// by an interrupted run is found and not made twice.
func (c *Controller) ensureNamespace(ctx context.Context, crr *clusterv1beta1.ClusterRegistrationRequest) (string, error) {
	id := string(crr.Spec.ClusterID)
	list, err := c.kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: clusterSelector(id)})
	if err != nil {
		return "", err
	}
	if len(list.Items) > 0 {
		return list.Items[0].Name, nil
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Labels: map[string]string{
			clusterv1beta1.LabelClusterID: id,
			clusterv1beta1.LabelCreatedBy: createdByHub,
		},
	}}
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

// ensureRBAC grants the agent's ServiceAccount what the seed README shows:
// its own request and tunnel socket parent-wide, everything in its namespace.
// Reading the request is scoped by name, so one cluster cannot read another's
// credentials from its request.
func (c *Controller) ensureRBAC(ctx context.Context, crr *clusterv1beta1.ClusterRegistrationRequest, ns string) (newServiceAccount bool, err error) {
	id := string(crr.Spec.ClusterID)
	name := clusterv1beta1.NamePrefix + id
	meta := func(namespace, n string) metav1.ObjectMeta {
		return metav1.ObjectMeta{
			Name: n, Namespace: namespace,
			Annotations: map[string]string{clusterv1beta1.AnnotationAutoUpdate: "true"},
			Labels: map[string]string{
				clusterv1beta1.LabelBootstrapping: "rbac-defaults",
				clusterv1beta1.LabelClusterID:     id,
				clusterv1beta1.LabelCreatedBy:     createdByHub,
			},
		}
	}
	subject := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: AgentServiceAccount, Namespace: ns}}

	sa := &corev1.ServiceAccount{ObjectMeta: meta(ns, AgentServiceAccount)}
	_, err = c.kube.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{})
	newServiceAccount = err == nil
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return false, err
	}
	cr := &rbacv1.ClusterRole{
		ObjectMeta: meta("", name),
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{clusterv1beta1.GroupName}, Resources: []string{"clusterregistrationrequests"}, Verbs: []string{"create"}},
			{APIGroups: []string{clusterv1beta1.GroupName}, Resources: []string{"clusterregistrationrequests"}, Verbs: []string{"get"}, ResourceNames: []string{name}},
			{APIGroups: []string{"proxies.clusternet.io"}, Resources: []string{"sockets"}, Verbs: []string{"*"}, ResourceNames: []string{id}},
		},
	}
	if err := createOrKeep(c.kube.RbacV1().ClusterRoles().Create(ctx, cr, metav1.CreateOptions{})); err != nil {
		return false, err
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: meta("", name),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
		Subjects:   subject,
	}
	if err := createOrKeep(c.kube.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{})); err != nil {
		return false, err
	}
	role := &rbacv1.Role{
		ObjectMeta: meta(ns, ManagedClusterRole),
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}}},
	}
	delete(role.Labels, clusterv1beta1.LabelClusterID)
	if err := createOrKeep(c.kube.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{})); err != nil {
		return false, err
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: meta(ns, ManagedClusterRole),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: ManagedClusterRole},
		Subjects:   subject,
	}
	return newServiceAccount, createOrKeep(c.kube.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}))
}

// ensureToken returns the agent's long-lived ServiceAccount token and the
// parent's CA bundle, both filled in by the token controller; nil until then.
func (c *Controller) ensureToken(ctx context.Context, ns string) (token, ca []byte, err error) {
	secrets := c.kube.CoreV1().Secrets(ns)
	secret, err := secrets.Get(ctx, agentTokenSecret, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		secret, err = secrets.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Name:        agentTokenSecret,
				Annotations: map[string]string{corev1.ServiceAccountNameKey: AgentServiceAccount},
				Labels:      map[string]string{clusterv1beta1.LabelCreatedBy: createdByHub},
			},
			Type: corev1.SecretTypeServiceAccountToken,
		}, metav1.CreateOptions{})
	}
	if err != nil {
		return nil, nil, err
	}
	if len(secret.Data[corev1.ServiceAccountTokenKey]) == 0 {
		return nil, nil, nil
	}
	return secret.Data[corev1.ServiceAccountTokenKey], secret.Data[corev1.ServiceAccountRootCAKey], nil
}

func createOrKeep[T any](_ T, err error) error {
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

func ptr[T any](v T) *T { return &v }
