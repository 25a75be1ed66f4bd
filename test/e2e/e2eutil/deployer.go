package e2eutil

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/test/framework"
	"github.com/clusternet/clusternet/test/testbed"
)

// ExampleObject reads one of the seed's examples/applications files as JSON.
func ExampleObject(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testbed.RepoRoot(), "examples", "applications", file))
	if err != nil {
		t.Fatal(err)
	}
	return MustJSON(t, b)
}

// MustJSON converts one YAML (or JSON) object to JSON.
func MustJSON(t *testing.T, y []byte) []byte {
	t.Helper()
	j, err := yaml.YAMLToJSON(y)
	if err != nil {
		t.Fatalf("%v\n%s", err, y)
	}
	return j
}

// GenericDescription is a Generic Description of objects for child, as the
// hub makes one for Subscription default/<subscription>: in the child's
// dedicated namespace, named <subscription>-generic, with the Subscription
// and cluster labels and the deployers' finalizer.
func GenericDescription(child *Child, subscription string, objects ...[]byte) *appsv1alpha1.Description {
	d := &appsv1alpha1.Description{
		ObjectMeta: metav1.ObjectMeta{
			Name:      subscription + appsv1alpha1.DescriptionGenericSuffix,
			Namespace: child.Namespace,
			Labels: map[string]string{
				appsv1alpha1.LabelSubscriptionName:      subscription,
				appsv1alpha1.LabelSubscriptionNamespace: "default",
				appsv1alpha1.LabelSubscriptionUID:       "00000000-0000-0000-0000-00000000e2e0",
				appsv1alpha1.LabelClusterID:             child.ID,
			},
			Finalizers: []string{appsv1alpha1.Finalizer},
		},
		Spec: appsv1alpha1.DescriptionSpec{Deployer: appsv1alpha1.DescriptionGenericDeployer},
	}
	for _, o := range objects {
		d.Spec.Raw = append(d.Spec.Raw, runtime.RawExtension{Raw: o})
	}
	return d
}

// KillAgent kills child's agent at once (SIGKILL: no graceful shutdown)
// and starts it again with the same flags; it reuses its stored credentials.
func KillAgent(t *testing.T, child *Child) {
	t.Helper()
	kill(t, child.Agent)
	child.Agent = StartBinary(t, child.Agent.Name+"-restarted", "agent", child.Agent.Args...)
}

// KillHub kills the hub at once (SIGKILL) and starts it again on the same port.
func KillHub(t *testing.T, hub *framework.Hub) {
	t.Helper()
	kill(t, hub.Process)
	if err := hub.Restart(); err != nil {
		t.Fatal(err)
	}
}

func kill(t *testing.T, p *testbed.Process) {
	t.Helper()
	if err := syscall.Kill(p.Pid, syscall.SIGKILL); err != nil {
		t.Fatalf("killing %s (pid %d): %v", p.Name, p.Pid, err)
	}
	WaitFor(t, 10*time.Second, p.Name+" gone", func(context.Context) (bool, string) { return p.Exited(), "" })
}
