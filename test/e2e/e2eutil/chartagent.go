package e2eutil

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/clusternet/clusternet/test/framework"
	"github.com/clusternet/clusternet/test/testbed"
)

// StartDeployedAgent runs clusternet-agent locally with exactly the args
// of deploy, the agent Deployment an installer (the hub's cluster-api
// discovery, `kubectl clusternet join`) applied in child: kwok runs no
// containers. What differs on loopback follows: the pod's in-cluster
// credentials (child's kubeconfig), probes and metrics off (their ports
// may be taken on this machine), then extra.
func StartDeployedAgent(t *testing.T, name string, deploy *appsv1.Deployment, child *testbed.Cluster, extra ...string) *testbed.Process {
	t.Helper()
	c := deploy.Spec.Template.Spec.Containers[0]
	if len(c.Env) > 0 {
		t.Fatalf("the agent Deployment has env %v, which a local run does not pass", c.Env)
	}
	container := framework.ChartContainer{Args: c.Args}
	args, err := container.ArgsFor(framework.PodFacts{Name: "clusternet-agent-0", Namespace: deploy.Namespace, IP: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	args = append(args, "--kubeconfig", child.Kubeconfig, "--health-probe-bind-address=0", "--metrics-bind-address=0")
	return StartBinary(t, name, "agent", append(args, extra...)...)
}
