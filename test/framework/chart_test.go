package framework

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/clusternet/clusternet/charts"
	"github.com/clusternet/clusternet/test/testbed"
)

func TestChartArgs(t *testing.T) {
	hub, err := HubChartArgs()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"--secure-port=6443", "--self-signed-certs=true", "--peer-advertise-address=$(POD_IP):6443",
		"--leader-elect=true", "--leader-elect-resource-namespace=clusternet-system", "--feature-gates=Deployer=true", "--v=2"}, hub.Args); diff != "" {
		t.Errorf("hub args (-want +got):\n%s", diff)
	}
	pod := PodFacts{Name: "clusternet-hub-0", Namespace: "clusternet-system", IP: "127.0.0.1"}
	args, err := hub.ArgsFor(pod)
	if err != nil {
		t.Fatal(err)
	}
	if args[2] != "--peer-advertise-address=127.0.0.1:6443" {
		t.Errorf("hub args for a pod at 127.0.0.1: %q", args)
	}
	env, err := EnvFor(hub.Env, pod)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"POD_NAME=clusternet-hub-0", "POD_NAMESPACE=clusternet-system", "POD_IP=127.0.0.1"}, env); diff != "" {
		t.Errorf("hub env (-want +got):\n%s", diff)
	}

	agent, err := ChartArgs(charts.Agent, map[string]any{"parentURL": "https://127.0.0.1:6443", "registrationToken": "abcdef.0123456789abcdef",
		"extraArgs": map[string]any{"proxy-allowed-hosts": "127.0.0.1:8001"}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{
		"--agent-namespace=clusternet-system", "--registration-secret=clusternet-system/clusternet-agent-cluster-registration",
		"--cluster-sync-mode=Dual", "--cluster-status-update-frequency=3m", "--feature-gates=AppPusher=true",
		"--health-probe-bind-address=:8081", "--metrics-bind-address=:8080", "--v=2", "--proxy-allowed-hosts=127.0.0.1:8001",
	}, agent.Args); diff != "" {
		t.Errorf("agent args (-want +got):\n%s", diff)
	}
	var secret bool
	for _, m := range agent.Manifests {
		secret = secret || (strings.Contains(m, "kind: Secret") && strings.Contains(m, "regToken: \"abcdef.0123456789abcdef\""))
	}
	if !secret {
		t.Errorf("the agent chart renders no registration Secret with the token:\n%s", agent.Manifests)
	}

	for in, want := range map[string]string{"$(POD_IP):1": "10.0.0.1:1", "$$(POD_IP)": "$(POD_IP)", "$(UNSET)": "$(UNSET)", "a$": "a$", "$(": "$("} {
		if got := expand(in, map[string]string{"POD_IP": "10.0.0.1"}); got != want {
			t.Errorf("expand(%q) = %q, want %q", in, got, want)
		}
	}
	if _, err := ChartArgs(charts.Agent, nil); err == nil {
		t.Error("the agent chart rendered without parentURL")
	}
	if _, err := EnvFor([]corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{Key: "k"}}}}, PodFacts{}); err == nil {
		t.Error("EnvFor resolved a Secret reference")
	}
}

// The testbed's agents run with the Predictor gate on, set through the
// chart's featureGates value (so e2e tests exercise it as installed), next
// to the chart's default AppPusher.
func TestAgentChartArgsTurnPredictorOn(t *testing.T) {
	parent := &testbed.Cluster{Dir: t.TempDir(), URL: "https://127.0.0.1:6443"}
	if err := os.WriteFile(filepath.Join(parent.Dir, bootstrapTokenFile), []byte("abcdef.0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	agent, err := AgentChartArgs(parent)
	if err != nil {
		t.Fatal(err)
	}
	if want := "--feature-gates=AppPusher=true,Predictor=true"; !slices.Contains(agent.Args, want) {
		t.Errorf("agent args %q, want %s among them", agent.Args, want)
	}
}
