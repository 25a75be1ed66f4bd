package agent

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/capacity"
	"github.com/clusternet/clusternet/pkg/features"
	"github.com/clusternet/clusternet/pkg/version"
)

// heartbeat reports the child's status to its ManagedCluster, and copies
// the node labels --label-aggregate-prefix names onto it (nodelabels.go). A
// failed report is logged and tried again at the next beat: missed beats are
// what the hub's lifecycle controller watches for.
func (a *Agent) heartbeat(ctx context.Context) error {
	status, nodes := a.collectStatus(ctx)
	err := a.writeStatus(ctx, status)
	if err != nil {
		klog.FromContext(ctx).Error(err, "Reporting cluster status failed", "managedCluster", a.creds.ManagedClusterName)
	} else {
		a.lastReported.set(status.PredictorEnabled, status.Available)
	}
	if nodes != nil { // nil: the list failed, which says nothing about the labels
		a.syncNodeLabels(ctx, nodes)
	}
	return err
}

// writeStatus replaces the ManagedCluster's status with status, but for its
// conditions, and sets Ready from it (registration.StatusWriter.Write).
func (a *Agent) writeStatus(ctx context.Context, status clusterv1beta1.ManagedClusterStatus) error {
	return a.statusWriter.Write(ctx, a.parent.ClustersV1beta1(), a.creds.DedicatedNamespace, a.creds.ManagedClusterName, status,
		func(generation int64) metav1.Condition { return readyCondition(status, generation) })
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
// and pod statistics, capacity for schedulers and, with the Predictor gate
// on, what the child can still take; it returns the nodes it listed (nil
// when the list failed). A part that cannot be read is left empty rather
// than failing the whole heartbeat.
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
	var pods []corev1.Pod
	if list, err := a.child.CoreV1().Pods(metav1.NamespaceAll).List(ctx, cached); err != nil {
		logger.Error(err, "Listing the child's pods")
	} else {
		pods = list.Items
		if pods == nil {
			pods = []corev1.Pod{}
		}
		s.PodStatistics.TotalPods = int32(len(pods))
		for i := range pods {
			if pods[i].Status.Phase == corev1.PodRunning {
				s.PodStatistics.RunningPods++
			}
		}
	}
	a.predict(&s, nodes, pods)
	return s, nodes
}

// predict fills status.available and status.predictorEnabled when the
// Predictor gate is on and both lists were read (nil: the list failed).
// After a failed list it reports no prediction for this beat rather than a
// partial one: predictorEnabled with nothing available tells the hub the
// cluster is full, which a failed list does not say. Until the next beat
// the hub sees a cluster without a predictor.
func (a *Agent) predict(s *clusterv1beta1.ManagedClusterStatus, nodes []corev1.Node, pods []corev1.Pod) {
	if !a.opts.FeatureGates.Enabled(features.Predictor) || nodes == nil || pods == nil {
		return
	}
	s.PredictorEnabled = true
	s.Available = availableResources(nodes, pods)
}

func (a *Agent) probe(ctx context.Context, path string) bool {
	err := a.child.Discovery().RESTClient().Get().AbsPath(path).Do(ctx).Error()
	return err == nil
}

// nodeStatistics counts nodes by readiness; capacity and allocatable are
// summed over the Ready ones (pkg/capacity, which `kubectl clusternet top`
// shares, so the plugin and the status agree).
func nodeStatistics(nodes []corev1.Node) (clusterv1beta1.NodeStatistics, corev1.ResourceList, corev1.ResourceList) {
	var stats clusterv1beta1.NodeStatistics
	for i := range nodes {
		switch nodeReadyStatus(&nodes[i]) {
		case "":
			stats.LostNodes++
		case corev1.ConditionTrue:
			stats.ReadyNodes++
		case corev1.ConditionFalse:
			stats.NotReadyNodes++
		default:
			stats.UnknownNodes++
		}
	}
	capacityList, allocatable := capacity.Nodes(nodes)
	return stats, capacityList, allocatable
}

// nodeReadyStatus is the status of n's Ready condition, "" when it has none.
func nodeReadyStatus(n *corev1.Node) corev1.ConditionStatus {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == corev1.NodeReady {
			return n.Status.Conditions[i].Status
		}
	}
	return ""
}
