package main

import (
	"context"
	"path/filepath"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	"github.com/clusternet/clusternet/test/framework"
	"github.com/clusternet/clusternet/test/testbed"
)

// startHub prepares parent for a hub (framework.InstallParent) and starts
// one, its files in dir/name.
func startHub(ctx context.Context, dir, name string, parent *testbed.Cluster, hubBin string, extraArgs ...string) (*framework.Hub, error) {
	if err := framework.InstallParent(ctx, parent); err != nil {
		return nil, err
	}
	return framework.StartHub(ctx, filepath.Join(dir, name), framework.InDir(dir), parent, hubBin, extraArgs...)
}

// stopProcess stops a hub or agent the benchmarks started, giving it 10
// seconds to exit.
func stopProcess(p *testbed.Process) { _ = p.Stop(10 * time.Second) }

// agentProcess is a clusternet-agent process a benchmark started for one child.
type agentProcess struct {
	*testbed.Process
	// child is the child cluster, as its admin.
	child kubernetes.Interface
	// id is the child's cluster id (openChild).
	id string
	// started is when the process was started, after id was read.
	started time.Time
}

// agentOptions is how startAgent starts an agent.
type agentOptions struct {
	// name is the process's name in the testbed folder (its log file).
	name string
	// args are agent flags beside the charts' (framework.AgentArgs).
	args []string
	// grantParentAdmin lets the parent's admin reach the child as its user
	// name, without system:masters (docs/tunnel.md): the child grants it
	// cluster-admin, once the agent is started.
	grantParentAdmin bool
}

// startAgent reads child's cluster id, then starts an agent in dir that
// registers child with parent. The caller waits for what it needs (the
// ManagedCluster Ready, the tunnel up) and stops the agent.
func startAgent(ctx context.Context, dir, agentBin string, parent, child *testbed.Cluster, o agentOptions) (*agentProcess, error) {
	kube, id, err := openChild(ctx, child)
	if err != nil {
		return nil, err
	}
	a := &agentProcess{child: kube, id: id, started: time.Now()}
	if a.Process, err = testbed.StartProcess(dir, o.name, agentBin, framework.AgentArgs(parent, child, o.args...)...); err != nil {
		return nil, err
	}
	if o.grantParentAdmin {
		if err := framework.GrantParentAdmin(ctx, child); err != nil {
			stopProcess(a.Process)
			return nil, err
		}
	}
	return a, nil
}

// openChild is a clientset for child, as its admin, and child's cluster id:
// its kube-system namespace's UID, as the agent registers it.
func openChild(ctx context.Context, child *testbed.Cluster) (kubernetes.Interface, string, error) {
	kube, err := child.Clientset()
	if err != nil {
		return nil, "", err
	}
	ks, err := kube.CoreV1().Namespaces().Get(ctx, "kube-system", metav1.GetOptions{})
	if err != nil {
		return nil, "", err
	}
	return kube, string(ks.UID), nil
}

// parentClients are the clients every section uses on the parent, as its
// admin: Clusternet's typed client, Kubernetes', and a dynamic one.
func parentClients(parent *testbed.Cluster) (versioned.Interface, kubernetes.Interface, dynamic.Interface, error) {
	cfg, err := parent.RESTConfig()
	if err != nil {
		return nil, nil, nil, err
	}
	cs, err := versioned.NewForConfig(cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	return cs, kube, dyn, nil
}
