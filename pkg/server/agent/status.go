package agent

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/version"
)

// heartbeat reports the child's status to its ManagedCluster, and copies
// the node labels --label-aggregate-prefix names onto it (nodelabels.go). A
// failed report is logged and tried again at the next beat: missed beats are
// what the hub's lifecycle controller watches for.
func (a *Agent) heartbeat(ctx context.Context) {
	status, nodes := a.collectStatus(ctx)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		mcls, err := a.parent.ClustersV1beta1().ManagedClusters(a.creds.DedicatedNamespace).Get(ctx, a.creds.ManagedClusterName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		mcls = mcls.DeepCopy()
		conditions := mcls.Status.Conditions
		mcls.Status = status
		mcls.Status.Conditions = conditions
		meta.SetStatusCondition(&mcls.Status.Conditions, readyCondition(status, mcls.Generation))
		_, err = a.parent.ClustersV1beta1().ManagedClusters(a.creds.DedicatedNamespace).UpdateStatus(ctx, mcls, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		klog.FromContext(ctx).Error(err, "Reporting cluster status failed", "managedCluster", a.creds.ManagedClusterName)
	}
	if nodes != nil { // nil: the list failed, which says nothing about the labels
		a.syncNodeLabels(ctx, nodes)
	}
}

func readyCondition(s clusterv1beta1.ManagedClusterStatus, generation int64) metav1.Condition {
	c := metav1.Condition{
		Type:               clusterv1beta1.ClusterReady,
		Status:             metav1.ConditionTrue,
		Reason:             "ClusterReady",
		Message:            "the child apiserver's /readyz is ok",
		ObservedGeneration: generation,
	}
	if !s.Readyz {
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, "ReadyzFailed", "the child apiserver's /readyz is failing"
	}
	return c
}

// collectStatus reads what upstream Clusternet's ManagedCluster status shows, plus node
// and pod statistics and capacity for schedulers, and returns the nodes it
// listed (nil when the list failed). A part that cannot be read is left
// empty rather than failing the whole heartbeat.
func (a *Agent) collectStatus(ctx context.Context) (clusterv1beta1.ManagedClusterStatus, []corev1.Node) {
	logger := klog.FromContext(ctx)
	freq := int64(a.opts.StatusFrequency / time.Second)
	s := clusterv1beta1.ManagedClusterStatus{
		LastObservedTime:          metav1.Now(),
		APIServerURL:              a.childCfg.Host,
		AppPusher:                 a.appPusher(),
		UseSocket:                 a.tunnelUp.Load(),
		AgentVersion:              version.Get().GitVersion,
		HeartbeatFrequencySeconds: &freq,
	}
	if v, err := a.child.Discovery().ServerVersion(); err != nil {
		logger.Error(err, "Reading the child's version")
	} else {
		s.K8sVersion, s.Platform = v.GitVersion, v.Platform
	}
	s.Healthz = a.probe(ctx, "/healthz")
	s.Livez = a.probe(ctx, "/livez")
	s.Readyz = a.probe(ctx, "/readyz")

	// ResourceVersion "0" is served from the apiserver's cache: a heartbeat
	// must not cost the child an etcd read per node and pod.
	cached := metav1.ListOptions{ResourceVersion: "0"}
	var nodes []corev1.Node
	if list, err := a.child.CoreV1().Nodes().List(ctx, cached); err != nil {
		logger.Error(err, "Listing the child's nodes")
	} else {
		nodes = list.Items
		if nodes == nil {
			nodes = []corev1.Node{} // listed, and there are none
		}
		s.NodeStatistics, s.Capacity, s.Allocatable = nodeStatistics(nodes)
	}
	if pods, err := a.child.CoreV1().Pods(metav1.NamespaceAll).List(ctx, cached); err != nil {
		logger.Error(err, "Listing the child's pods")
	} else {
		s.PodStatistics.TotalPods = int32(len(pods.Items))
		for i := range pods.Items {
			if pods.Items[i].Status.Phase == corev1.PodRunning {
				s.PodStatistics.RunningPods++
			}
		}
	}
	return s, nodes
}

func (a *Agent) probe(ctx context.Context, path string) bool {
	err := a.child.Discovery().RESTClient().Get().AbsPath(path).Do(ctx).Error()
	return err == nil
}

// nodeStatistics counts nodes by readiness and sums capacity and
// allocatable over the Ready ones: what the cluster can run right now.
func nodeStatistics(nodes []corev1.Node) (clusterv1beta1.NodeStatistics, corev1.ResourceList, corev1.ResourceList) {
	var stats clusterv1beta1.NodeStatistics
	capacity, allocatable := corev1.ResourceList{}, corev1.ResourceList{}
	for i := range nodes {
		var ready *corev1.NodeCondition
		for j := range nodes[i].Status.Conditions {
			if nodes[i].Status.Conditions[j].Type == corev1.NodeReady {
				ready = &nodes[i].Status.Conditions[j]
			}
		}
		switch {
		case ready == nil:
			stats.LostNodes++
			continue
		case ready.Status == corev1.ConditionTrue:
			stats.ReadyNodes++
		case ready.Status == corev1.ConditionFalse:
			stats.NotReadyNodes++
			continue
		default:
			stats.UnknownNodes++
			continue
		}
		addResources(capacity, nodes[i].Status.Capacity)
		addResources(allocatable, nodes[i].Status.Allocatable)
	}
	return stats, capacity, allocatable
}

func addResources(sum, add corev1.ResourceList) {
	for name, q := range add {
		total := sum[name]
		if total.Format == "" {
			total = resource.Quantity{Format: q.Format}
		}
		total.Add(q)
		sum[name] = total
	}
}
