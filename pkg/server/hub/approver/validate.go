package approver

import (
	"context"
	"fmt"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/seal"
)

// reservedLabelPrefixes are label domains a registration may not ask for:
// Clusternet's own labels tie a ManagedCluster to its identity, and the
// Kubernetes ones are the platform's.
var reservedLabelPrefixes = []string{"clusters.clusternet.io/", "clusternet.io/", "kubernetes.io/", "k8s.io/"}

// refusal says why a request must be denied, or "" when it may be answered.
// Everything a bootstrap-token holder writes is checked here, before anything
// is made for it: that holder may be anyone with the shared token, so the
// request may claim another cluster's name or namespace, or a namespace that
// means something else in the parent. An already answered request passed
// these checks when it was answered and is not checked again: its namespace
// and name are its own now.
func (c *Controller) refusal(ctx context.Context, crr *clusterv1beta1.ClusterRegistrationRequest) (string, error) {
	if r := crr.Status.Result; r != nil && *r == clusterv1beta1.RequestApproved && len(crr.Status.SealedToken) > 0 {
		return "", nil
	}
	id := string(crr.Spec.ClusterID)
	if want := clusterv1beta1.NamePrefix + id; crr.Name != want {
		return fmt.Sprintf("metadata.name %q does not match spec.clusterId %q: a request must be named %q", crr.Name, id, want), nil
	}
	if len(crr.Spec.PublicKey) == 0 {
		return "spec.publicKey is empty: this hub hands out credentials only sealed to a key the requesting agent holds; " +
			"upgrade the agent, which generates one", nil
	}
	if _, err := seal.ParsePublicKey(crr.Spec.PublicKey); err != nil {
		return fmt.Sprintf("spec.publicKey is not a PEM X25519 public key: %v", err), nil
	}
	if reason := labelsRefusal(crr.Spec.ClusterLabels); reason != "" {
		return reason, nil
	}
	// The namespace and the name are looked up in the parent at once: the
	// two reads are independent, and each is a round trip the agent waits on.
	nameRefusal := background(func() (string, error) { return c.nameRefusal(ctx, crr) })
	if reason, err := c.namespaceRefusal(ctx, crr); reason != "" || err != nil {
		_, _ = nameRefusal() // it ends with ctx; nothing is left running
		return reason, err
	}
	return nameRefusal()
}

func labelsRefusal(lbls map[string]string) string {
	keys := make([]string, 0, len(lbls))
	for k := range lbls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, p := range reservedLabelPrefixes {
			if strings.HasPrefix(k, p) || strings.Contains(k, "."+p) {
				return fmt.Sprintf("spec.clusterLabels[%q]: labels under %q are reserved; an admin sets them on the ManagedCluster", k, p)
			}
		}
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return fmt.Sprintf("spec.clusterLabels[%q]: not a valid label key: %s", k, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(lbls[k]); len(errs) > 0 {
			return fmt.Sprintf("spec.clusterLabels[%q] = %q: not a valid label value: %s", k, lbls[k], strings.Join(errs, "; "))
		}
	}
	return ""
}

// namespaceRefusal: a cluster may ask for a dedicated namespace that does not
// exist yet and means nothing else; an existing namespace is only ever its
// own (labelled with its cluster id by an earlier run of this approver).
func (c *Controller) namespaceRefusal(ctx context.Context, crr *clusterv1beta1.ClusterRegistrationRequest) (string, error) {
	ns := crr.Spec.ClusterNamespace
	if ns == "" {
		return "", nil
	}
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return fmt.Sprintf("spec.clusterNamespace %q is not a valid namespace name: %s", ns, strings.Join(errs, "; ")), nil
	}
	if isReservedNamespace(ns) {
		return fmt.Sprintf("spec.clusterNamespace %q is reserved (default, kube-*, clusternet-system, clusternet-reserved): "+
			"leave it empty to get a generated clusternet-xxxxx namespace", ns), nil
	}
	existing, err := c.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if existing.Labels[clusterv1beta1.LabelClusterID] != string(crr.Spec.ClusterID) {
		return fmt.Sprintf("spec.clusterNamespace %q already exists in the parent and is not this cluster's: "+
			"ask for another name, or leave it empty to get a generated one", ns), nil
	}
	return "", nil
}

// nameRefusal: ManagedCluster names identify clusters to people (kubectl
// clusternet --cluster NAME), so one name belongs to one cluster id.
func (c *Controller) nameRefusal(ctx context.Context, crr *clusterv1beta1.ClusterRegistrationRequest) (string, error) {
	name := crr.Spec.ClusterName
	if name == "" {
		return "", nil
	}
	list, err := c.clusternet.ClustersV1beta1().ManagedClusters(metav1.NamespaceAll).List(ctx, metav1.ListOptions{
		LabelSelector: labels.Set{clusterv1beta1.LabelClusterName: name}.String(),
	})
	if err != nil {
		return "", err
	}
	for _, mc := range list.Items {
		if mc.Spec.ClusterID != crr.Spec.ClusterID {
			return fmt.Sprintf("spec.clusterName %q is taken by another cluster (ManagedCluster %s/%s): "+
				"ask for another name with --cluster-name, or leave it empty to get a generated one", name, mc.Namespace, mc.Name), nil
		}
	}
	return "", nil
}
