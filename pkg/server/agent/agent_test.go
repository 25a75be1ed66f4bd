package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		modify  func(*Options)
		wantErr string
	}{
		{name: "defaults", modify: func(*Options) {}},
		{name: "https parent", modify: func(o *Options) { o.ParentURL = "https://192.168.10.10:6443" }},
		{name: "http parent", modify: func(o *Options) { o.ParentURL = "http://192.168.10.10" },
			wantErr: `--parent-url: "http://192.168.10.10" uses scheme "http": the parent URL must be https, e.g. https://192.168.10.10:6443`},
		{name: "parent without host", modify: func(o *Options) { o.ParentURL = "https://" },
			wantErr: `--parent-url: "https://" has no host`},
		{name: "sync mode", modify: func(o *Options) { o.ClusterSyncMode = "push" },
			wantErr: `--cluster-sync-mode "push" is not supported: use Push, Pull or Dual`},
		{name: "cluster type", modify: func(o *Options) { o.ClusterType = "Edge" },
			wantErr: `--cluster-type "Edge" is not supported`},
		{name: "frequency", modify: func(o *Options) { o.StatusFrequency = 100 * time.Millisecond },
			wantErr: `--cluster-status-update-frequency 100ms: must be at least 1s`},
		{name: "cluster name", modify: func(o *Options) { o.ClusterName = "Edge_1" },
			wantErr: `--cluster-name "Edge_1": a lowercase RFC 1123 label`},
		{name: "token shape, not echoed", modify: func(o *Options) { o.BootstrapToken = "secret-value" },
			wantErr: `--bootstrap-token: a bootstrap token looks like abcdef.0123456789abcdef`},
		{name: "registration secret", modify: func(o *Options) { o.RegistrationSecret = "just-a-name" },
			wantErr: `--registration-secret "just-a-name": must be namespace/name`},
		{name: "probes and metrics off", modify: func(o *Options) { o.HealthProbeBindAddress, o.MetricsBindAddress = "0", "0" }},
		{name: "probes on loopback", modify: func(o *Options) { o.HealthProbeBindAddress = "127.0.0.1:18081" }},
		{name: "probe address without port", modify: func(o *Options) { o.HealthProbeBindAddress = "8081" },
			wantErr: `--health-probe-bind-address "8081": must be host:port, :port or 0 (off)`},
		{name: "metrics port not a number", modify: func(o *Options) { o.MetricsBindAddress = ":http-alt" },
			wantErr: `--metrics-bind-address ":http-alt": port "http-alt" must be a number from 0 to 65535`},
		{name: "probes and metrics on one address", modify: func(o *Options) { o.HealthProbeBindAddress, o.MetricsBindAddress = ":9000", ":9000" },
			wantErr: `--health-probe-bind-address and --metrics-bind-address are both ":9000"`},
		{name: "profiling on loopback", modify: func(o *Options) { o.Profiling = true }},
		{name: "profiling on IPv6 loopback", modify: func(o *Options) { o.Profiling, o.ProfilingBindAddress = true, "[::1]:6060" }},
		{name: "profiling on every address", modify: func(o *Options) { o.Profiling, o.ProfilingBindAddress = true, ":6060" },
			wantErr: `--profiling-bind-address ":6060": host "" is not a loopback address`},
		{name: "profiling on a pod address", modify: func(o *Options) { o.Profiling, o.ProfilingBindAddress = true, "10.0.0.7:6060" },
			wantErr: `--profiling-bind-address "10.0.0.7:6060": host "10.0.0.7" is not a loopback address`},
		{name: "profiling address unchecked while off", modify: func(o *Options) { o.ProfilingBindAddress = ":6060" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := NewOptions()
			tc.modify(o)
			err := o.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
			case err != nil && strings.Contains(err.Error(), "secret-value"):
				t.Errorf("the error echoes a secret: %v", err)
			}
		})
	}
}

func node(ready corev1.ConditionStatus, cpu string) corev1.Node {
	n := corev1.Node{Status: corev1.NodeStatus{
		Capacity:    corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)},
		Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)},
	}}
	if ready != "" {
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready}}
	}
	return n
}

func TestNodeStatistics(t *testing.T) {
	stats, capacity, allocatable := nodeStatistics([]corev1.Node{
		node(corev1.ConditionTrue, "4"), node(corev1.ConditionTrue, "2500m"),
		node(corev1.ConditionFalse, "8"), node(corev1.ConditionUnknown, "8"), node("", "8"),
	})
	if diff := cmp.Diff(clusterv1beta1.NodeStatistics{ReadyNodes: 2, NotReadyNodes: 1, UnknownNodes: 1, LostNodes: 1}, stats); diff != "" {
		t.Errorf("statistics (-want +got):\n%s", diff)
	}
	for name, list := range map[string]corev1.ResourceList{"capacity": capacity, "allocatable": allocatable} {
		if got := list[corev1.ResourceCPU]; got.MilliValue() != 6500 {
			t.Errorf("%s cpu = %s, want 6500m: only Ready nodes count", name, got.String())
		}
	}
}
