package main

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	"github.com/clusternet/clusternet/pkg/server/hub/lifecycle"
	"github.com/clusternet/clusternet/test/testbed"
)

// The failover benchmark's timings: the hub's grace period and the agents'
// heartbeat (three missed make Ready Unknown).
const (
	failoverGrace     = 10 * time.Second
	failoverHeartbeat = 2 * time.Second
	failoverReplicas  = 6
)

type failoverResults struct {
	runs []time.Duration
}

// benchFailover starts its own testbed of three children and a hub with
// FailOver on, divides a Deployment of 6 replicas over them by static
// weights (2 each), and times, run after run, from killing one child's
// agent (SIGKILL: a lost cluster) until the 6 replicas are Running in the
// other two. The agent is started again after each run, and the next run
// waits until the division is 2, 2, 2 again, every replica Running.
func benchFailover(ctx context.Context, dir, hubBin, agentBin string, runs int) (*failoverResults, error) {
	tb, err := testbed.Up(ctx, testbed.Options{Dir: filepath.Join(dir, "failover"), Children: 3})
	if err != nil {
		return nil, err
	}
	defer tb.Down()
	parent := tb.Parent
	hub, err := startHub(ctx, tb.Dir, "hub", parent, hubBin, "--feature-gates=FailOver=true", "--cluster-failover-grace-period="+failoverGrace.String())
	if err != nil {
		return nil, err
	}
	defer stopProcess(hub.Process)
	cs, parentKube, dyn, err := parentClients(parent)
	if err != nil {
		return nil, err
	}
	agents := make([]*agentProcess, len(tb.Children))
	heartbeat := "--cluster-status-update-frequency=" + failoverHeartbeat.String()
	for i, c := range tb.Children {
		if agents[i], err = startAgent(ctx, tb.Dir, agentBin, parent, c, agentOptions{name: "agent-" + c.Name, args: []string{heartbeat}}); err != nil {
			return nil, err
		}
	}
	defer func() {
		for _, a := range agents {
			stopProcess(a.Process)
		}
	}()
	for _, a := range agents {
		if err := waitRegistered(ctx, cs, a.id); err != nil {
			return nil, err
		}
	}

	if _, err := parentKube.CoreV1().Namespaces().Create(ctx, &benchNamespace, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	const name = "failover"
	if err := createTemplates(ctx, dyn, name); err != nil {
		return nil, err
	}
	if err := scaleTemplate(ctx, dyn, name, failoverReplicas); err != nil {
		return nil, err
	}
	sub := benchSubscription(name, agents[0].id)
	sub.Spec.Subscribers[0].Weight = 1
	for _, a := range agents[1:] {
		sub.Spec.Subscribers = append(sub.Spec.Subscribers, appsv1alpha1.Subscriber{Weight: 1, ClusterAffinity: &metav1.LabelSelector{
			MatchLabels: map[string]string{clusterv1beta1.LabelClusterID: a.id}}})
	}
	sub.Spec.SchedulingStrategy = appsv1alpha1.DividingSchedulingStrategy
	sub.Spec.DividingScheduling = &appsv1alpha1.DividingScheduling{Type: appsv1alpha1.StaticReplicaDividingType}
	if _, err := cs.AppsV1alpha1().Subscriptions("bench").Create(ctx, sub, metav1.CreateOptions{}); err != nil {
		return nil, err
	}

	res := &failoverResults{}
	for run := range runs {
		if err := waitRunning(ctx, agents, name, []int32{2, 2, 2}); err != nil {
			return nil, fmt.Errorf("run %d, before: %w", run, err)
		}
		lost := run % len(agents)
		if err := agents[lost].Kill(); err != nil {
			return nil, err
		}
		start := time.Now()
		want := []int32{3, 3, 3}
		want[lost] = -1 // not read: its agent is gone, and its objects stay
		if err := waitRunning(ctx, agents, name, want); err != nil {
			return nil, fmt.Errorf("run %d, failing over from child %d: %w", run, lost+1, err)
		}
		res.runs = append(res.runs, time.Since(start))
		restarted, err := agents[lost].Restart()
		if err != nil {
			return nil, err
		}
		agents[lost].Process = restarted
		if err := waitUntainted(ctx, cs, agents[lost].id); err != nil {
			return nil, fmt.Errorf("run %d, child %d back: %w", run, lost+1, err)
		}
	}
	return res, nil
}

// waitRegistered waits until the cluster of id is Ready with its tunnel up.
func waitRegistered(ctx context.Context, cs versioned.Interface, id string) error {
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		m, err := clusterOf(ctx, cs, id)
		return err == nil && m.Status.Readyz && m.Status.UseSocket, nil
	})
}

// waitUntainted waits until the cluster of id has lost the failover taint.
func waitUntainted(ctx context.Context, cs versioned.Interface, id string) error {
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		m, err := clusterOf(ctx, cs, id)
		return err == nil && !clusterv1beta1.HasFailoverTaint(m.Spec.Taints), nil
	})
}

func clusterOf(ctx context.Context, cs versioned.Interface, id string) (*clusterv1beta1.ManagedCluster, error) {
	list, err := cs.ClustersV1beta1().ManagedClusters("").List(ctx, metav1.ListOptions{LabelSelector: clusterv1beta1.LabelClusterID + "=" + id})
	if err != nil {
		return nil, err
	}
	if len(list.Items) != 1 {
		return nil, fmt.Errorf("%d ManagedClusters of cluster id %s", len(list.Items), id)
	}
	return &list.Items[0], nil
}

// waitRunning waits until Deployment default/name in each child i runs
// want[i] replicas, all of them ready (want[i] < 0: that child is not read).
func waitRunning(ctx context.Context, agents []*agentProcess, name string, want []int32) error {
	var last []string
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		last = last[:0]
		ok := true
		for i, a := range agents {
			if want[i] < 0 {
				continue
			}
			d, err := a.child.AppsV1().Deployments("default").Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				last, ok = append(last, fmt.Sprintf("child %d: %v", i+1, err)), false
				continue
			}
			spec := int32(1)
			if d.Spec.Replicas != nil {
				spec = *d.Spec.Replicas
			}
			last = append(last, fmt.Sprintf("child %d: %d of %d ready", i+1, d.Status.ReadyReplicas, spec))
			ok = ok && spec == want[i] && d.Status.ReadyReplicas == want[i]
		}
		return ok, nil
	})
	if err != nil {
		return fmt.Errorf("want %v running: %w (last: %s)", want, err, strings.Join(last, ", "))
	}
	return nil
}

// scaleTemplate sets the replicas of name's Deployment template.
func scaleTemplate(ctx context.Context, dyn dynamic.Interface, name string, replicas int) error {
	patch := fmt.Sprintf(`{"spec":{"replicas":%d}}`, replicas)
	_, err := dyn.Resource(shadowDeployments).Namespace("default").Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	return err
}

func failoverSection(r *failoverResults) string {
	sorted := slices.Clone(r.runs)
	slices.Sort(sorted)
	s := func(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }
	var b strings.Builder
	fmt.Fprintf(&b, "## Failover: an agent stopped → its replicas Running elsewhere\n\n")
	fmt.Fprintf(&b, "Measured %s on %s/%s, %d CPUs, Kubernetes %s (testbed), %d runs; three children, the hub with\n",
		time.Now().UTC().Format("2006-01-02"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), testbed.KubeVersion(), len(r.runs))
	fmt.Fprintf(&b, "`--feature-gates=FailOver=true --cluster-failover-grace-period=%s`, the agents with a %s heartbeat\n", failoverGrace, failoverHeartbeat)
	fmt.Fprintf(&b, "(Ready turns Unknown after %d missed). A Deployment of %d replicas divided by static weights, 2 per child;\n", lifecycle.MissedHeartbeats, failoverReplicas)
	fmt.Fprintf(&b, "each run kills one child's agent (SIGKILL) and times until the other two run 3 each, every replica ready.\n\n")
	fmt.Fprintf(&b, "Command: `make bench` (`go run ./test/bench --only failover`)\n\n")
	fmt.Fprintf(&b, "| | p50 | min | max |\n|---|---|---|---|\n")
	fmt.Fprintf(&b, "| agent stopped → replicas Running elsewhere | %s | %s | %s |\n\n", s(percentile(sorted, 0.5)), s(sorted[0]), s(sorted[len(sorted)-1]))
	// The last heartbeat came up to one period before the kill: Ready
	// turns Unknown between 2 and 3 periods after it.
	lo, hi := failoverGrace+(lifecycle.MissedHeartbeats-1)*failoverHeartbeat, failoverGrace+lifecycle.MissedHeartbeats*failoverHeartbeat
	fmt.Fprintf(&b, "The floor is the heartbeat detection plus the grace period, %s to %s (the last heartbeat came up to one period\n", s(lo), s(hi))
	fmt.Fprintf(&b, "before the kill); the rest is the hub tainting the cluster, scheduling again, pushing the new shares, and the\n")
	fmt.Fprintf(&b, "children's Deployments scaling up.\n")
	return b.String()
}

// shadowDeployments are Deployment templates, through the shadow API.
var shadowDeployments = schema.GroupVersionResource{Group: "shadow", Version: "v1alpha1", Resource: "deployments"}
