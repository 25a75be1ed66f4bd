// Package framework sets Clusternet up on a testbed the way deploy/ does in
// a real parent: CRDs, RBAC, bootstrap token, the hub behind an APIService,
// and agents. End-to-end tests and benchmarks share it.
package framework

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/clusternet/clusternet/pkg/bootstraptoken"
	"github.com/clusternet/clusternet/test/testbed"
)

// bootstrapTokenFile, in the parent's folder, holds the token InstallParent
// made, so local-up, tests and a later `make local-up` find it.
const bootstrapTokenFile = "bootstrap-token"

// BootstrapToken is the token InstallParent made for parent: a fresh random
// one with an expiry, as `kubectl clusternet create token` makes, never a
// published sample. Empty before InstallParent.
func BootstrapToken(parent *testbed.Cluster) string {
	b, err := os.ReadFile(filepath.Join(parent.Dir, bootstrapTokenFile))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// ensureBootstrapToken keeps parent's token, or makes a new one when there
// is none or its Secret is gone.
func ensureBootstrapToken(ctx context.Context, parent *testbed.Cluster) error {
	cfg, err := parent.RESTConfig()
	if err != nil {
		return err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	if existing := BootstrapToken(parent); existing != "" {
		if t, err := bootstraptoken.Parse(existing); err == nil {
			if _, err := kube.CoreV1().Secrets(bootstraptoken.Namespace).Get(ctx, t.SecretName(), metav1.GetOptions{}); err == nil {
				return nil
			}
		}
	}
	t, _, err := bootstraptoken.Create(ctx, kube, bootstraptoken.Options{TTL: 24 * time.Hour, Description: "made by the Clusternet testbed for its agents"})
	if err != nil {
		return fmt.Errorf("bootstrap token: %w", err)
	}
	return os.WriteFile(filepath.Join(parent.Dir, bootstrapTokenFile), []byte(t.String()+"\n"), 0o600)
}

// Root is the repository root, for deploy/ and manifests/.
func Root() string { return testbed.RepoRoot() }

func kubectl(ctx context.Context, c *testbed.Cluster, stdin string, args ...string) error {
	cmd := c.Kubectl(ctx, args...)
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("kubectl %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// InstallParent installs the CRDs, the hub's namespace and RBAC, and a fresh
// bootstrap token (BootstrapToken).
func InstallParent(ctx context.Context, parent *testbed.Cluster) error {
	root := Root()
	if err := kubectl(ctx, parent, "", "apply", "--server-side", "-f", filepath.Join(root, "deploy", "crds")); err != nil {
		return err
	}
	// kubectl wait fails outright on a CRD whose status has no conditions
	// yet (".status.conditions accessor error"): ask again until all are there.
	var last error
	if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		last = kubectl(ctx, parent, "", "wait", "--for=condition=Established", "--timeout=30s", "crd", "--all")
		return last == nil, nil
	}); err != nil {
		return fmt.Errorf("CRDs not Established: %w: %w", err, last)
	}
	for _, args := range [][]string{
		{"apply", "-f", filepath.Join(root, "deploy", "hub", "00-namespace.yaml"), "-f", filepath.Join(root, "deploy", "hub", "rbac.yaml"),
			"-f", filepath.Join(root, "deploy", "hub", "admission.yaml"), "-f", filepath.Join(root, "deploy", "hub", "flowcontrol.yaml")},
	} {
		if err := kubectl(ctx, parent, "", args...); err != nil {
			return err
		}
	}
	return ensureBootstrapToken(ctx, parent)
}

// Starter starts a program; testbed.StartProcess (a test's own) and
// Testbed.Run (recorded, so `testbed down` stops it) both fit.
type Starter func(name, binary string, args ...string) (*testbed.Process, error)

// InDir starts programs with their logs in dir.
func InDir(dir string) Starter {
	return func(name, binary string, args ...string) (*testbed.Process, error) {
		return testbed.StartProcess(dir, name, binary, args...)
	}
}

// Hub is a running clusternet-hub serving proxies.clusternet.io through the
// parent's aggregator.
type Hub struct {
	*testbed.Process
	Port   int
	binary string
	args   []string
	start  Starter
}

// StartHub starts the hub on a free loopback port with a serving certificate
// for clusternet-hub.clusternet-system.svc, registers it with an
// ExternalName Service to localhost and the APIServices of
// proxies.clusternet.io and shadow and the Subscription webhook
// (deploy/hub/webhook.yaml), and returns once real requests through the
// parent reach all three.
func StartHub(ctx context.Context, dir string, start Starter, parent *testbed.Cluster, binary string, extraArgs ...string) (*Hub, error) {
	port, release, err := testbed.ReservePort()
	if err != nil {
		return nil, err
	}
	defer release()
	ca, err := testbed.NewCA("clusternet-hub-ca")
	if err != nil {
		return nil, err
	}
	kp, err := ca.Issue(testbed.CertSpec{CommonName: "clusternet-hub", Server: true,
		DNSNames: []string{"clusternet-hub.clusternet-system.svc", "localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	certFile, keyFile, err := kp.WriteFiles(dir, "hub-serving")
	if err != nil {
		return nil, err
	}
	args, err := HubArgs(parent, port, append([]string{"--tls-cert-file", certFile, "--tls-private-key-file", keyFile}, extraArgs...)...)
	if err != nil {
		return nil, err
	}
	h := &Hub{Port: port, binary: binary, start: start, args: args}
	if err := h.run(); err != nil {
		return nil, err
	}
	apiService := apiServiceManifest(port, ca.CertPEM)
	if err := kubectl(ctx, parent, apiService, "apply", "-f", "-"); err != nil {
		return nil, err
	}
	// The APIService can say Available while requests still fail: ask for real.
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		if h.Exited() {
			return false, fmt.Errorf("hub exited:\n%s", h.LogTail(3000))
		}
		return kubectl(ctx, parent, "", "get", "--raw", "/apis/proxies.clusternet.io/v1alpha1") == nil, nil
	})
	if err != nil {
		return nil, fmt.Errorf("proxies.clusternet.io not served through the parent: %w\n%s", err, h.LogTail(3000))
	}
	// The shadow API answers once it has discovered the parent's resources.
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		if h.Exited() {
			return false, fmt.Errorf("hub exited:\n%s", h.LogTail(3000))
		}
		return kubectl(ctx, parent, "", "get", "--raw", "/apis/shadow/v1alpha1/namespaces") == nil, nil
	})
	if err != nil {
		return nil, fmt.Errorf("shadow/v1alpha1 not served through the parent: %w\n%s", err, h.LogTail(3000))
	}
	if err := registerWebhook(ctx, parent, h, ca.CertPEM, port); err != nil {
		return nil, err
	}
	return h, nil
}

// registerWebhook applies deploy/hub/webhook.yaml as shipped, with the
// caBundle and the ExternalName Service's port filled in (as the
// APIServices above), and returns once the parent calls it: a Subscription
// whose feed cannot be checked is refused by the hub, not stored.
func registerWebhook(ctx context.Context, parent *testbed.Cluster, h *Hub, caPEM []byte, port int) error {
	file := filepath.Join(Root(), "deploy", "hub", "webhook.yaml")
	shipped, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var vwc admissionregistrationv1.ValidatingWebhookConfiguration
	if err := yaml.UnmarshalStrict(shipped, &vwc); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	for i := range vwc.Webhooks {
		cc := &vwc.Webhooks[i].ClientConfig
		if cc.Service == nil || cc.Service.Name != "clusternet-hub" || cc.Service.Namespace != "clusternet-system" {
			return fmt.Errorf("%s: webhook %q does not call Service clusternet-system/clusternet-hub", file, vwc.Webhooks[i].Name)
		}
		cc.CABundle = caPEM
		cc.Service.Port = ptr.To(int32(port))
	}
	out, err := json.Marshal(vwc)
	if err != nil {
		return err
	}
	if err := kubectl(ctx, parent, string(out), "apply", "-f", "-"); err != nil {
		return err
	}
	// The parent loads webhook configurations from an informer: until it
	// has, Subscriptions would be admitted unchecked. A feed whose apiVersion
	// does not parse is one the hub refuses; a server-side dry run stores
	// nothing.
	probe := `{"apiVersion": "apps.clusternet.io/v1alpha1", "kind": "Subscription",
"metadata": {"name": "clusternet-webhook-probe", "namespace": "default"},
"spec": {"subscribers": [{"clusterAffinity": {}}], "feeds": [{"apiVersion": "probe/of/webhook", "kind": "ConfigMap", "namespace": "default", "name": "probe"}]}}`
	var last error
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		if h.Exited() {
			return false, fmt.Errorf("hub exited:\n%s", h.LogTail(3000))
		}
		last = kubectl(ctx, parent, probe, "create", "--dry-run=server", "-f", "-")
		return last != nil && strings.Contains(last.Error(), `admission webhook "subscriptions.apps.clusternet.io" denied the request`), nil
	})
	if err != nil {
		return fmt.Errorf("the parent does not call the Subscription webhook (deploy/hub/webhook.yaml): %w: last answer: %s\n%s", err, fmt.Sprint(last), h.LogTail(3000))
	}
	return nil
}

func (h *Hub) run() error {
	p, err := h.start("clusternet-hub", h.binary, h.args...)
	if err != nil {
		return err
	}
	h.Process = p
	return nil
}

// Restart stops the hub and starts it again on the same port.
func (h *Hub) Restart() error {
	if err := h.Stop(10 * time.Second); err != nil {
		return err
	}
	return h.run()
}

// HubArgs are the flags of a hub serving on loopback port: what the hub
// chart runs (HubChartArgs, so what is tested is what is shipped), then
// what differs on loopback (kubeconfig, address and port, short leader
// election), then extra. The last of a repeated flag wins.
func HubArgs(parent *testbed.Cluster, port int, extra ...string) ([]string, error) {
	chart, err := HubChartArgs()
	if err != nil {
		return nil, err
	}
	args, err := chart.ArgsFor(PodFacts{Name: "clusternet-hub", Namespace: "clusternet-system", IP: "127.0.0.1"})
	if err != nil {
		return nil, err
	}
	return append(append(args,
		"--kubeconfig", parent.Kubeconfig,
		"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(port), "--peer-advertise-address=127.0.0.1:"+strconv.Itoa(port),
		"--leader-elect-lease-duration=4s", "--leader-elect-renew-deadline=3s", "--leader-elect-retry-period=500ms",
	), extra...), nil
}

// agentChartArgs are the args the agent chart runs for a child of parent.
// Rendering the embedded chart fails only when the chart itself is broken,
// which every test then reports at once.
func agentChartArgs(parent *testbed.Cluster) []string {
	c, err := AgentChartArgs(parent)
	if err != nil {
		panic(fmt.Sprintf("rendering charts/clusternet-agent: %v", err))
	}
	return c.Args
}

// AgentArgs are the flags an agent in child needs to register with parent
// using the bootstrap token; extra flags follow. Health probes and metrics
// are off (their default ports would collide between agents on one machine):
// extra turns them on with --health-probe-bind-address and
// --metrics-bind-address on free loopback ports (ProbeArgs).
func AgentArgs(parent, child *testbed.Cluster, extra ...string) []string {
	// What the agent chart runs first, so what is tested is what is shipped.
	return append(append(agentChartArgs(parent),
		"--kubeconfig", child.Kubeconfig, "--parent-url", parent.URL, "--bootstrap-token", BootstrapToken(parent),
		"--parent-ca-file", parent.CAFile, "--health-probe-bind-address=0", "--metrics-bind-address=0",
	), extra...)
}
