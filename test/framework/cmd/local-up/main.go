// Command local-up is the README's main job: a parent and two children on
// the testbed, clusternet-hub serving in the parent behind its APIService,
// and clusternet-agent in each child, registered as upstream Clusternet's
// README does (bootstrap token, registration Secret from the template). Hub and agents
// run with the args their deploy manifests give them, recorded in the
// testbed's state so `testbed down` (make local-down) stops them.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/clusternet/clusternet/test/framework"
	"github.com/clusternet/clusternet/test/testbed"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve-charts" {
		if err := serveCharts(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "local-up serve-charts:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "local-up:", err)
		os.Exit(1)
	}
}

func run() error {
	dir := flag.String("dir", "_output/testbed", "folder for the clusters' files, logs and state")
	bin := flag.String("bin", "bin", "folder holding the hub and agent binaries")
	passThrough := flag.Bool("anonymous-passthrough", false,
		"also apply deploy/optional/anonymous-passthrough.yaml: any anonymous client of the parent may then impersonate user clusternet "+
			"to pass child credentials through (\"Visit ManagedCluster With RBAC\" in upstream Clusternet's README); see the manifest's header for what that opens")
	flag.Parse()
	if _, err := testbed.Load(*dir); err == nil {
		return fmt.Errorf("a testbed is already running in %s: run 'make local-down' first", *dir)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	hubBin, err := filepath.Abs(filepath.Join(*bin, "hub"))
	if err != nil {
		return err
	}
	agentBin, err := filepath.Abs(filepath.Join(*bin, "agent"))
	if err != nil {
		return err
	}

	start := time.Now()
	tb, err := testbed.Up(ctx, testbed.Options{Dir: *dir, Children: 2})
	if err != nil {
		return err
	}
	if err := setUp(ctx, tb, hubBin, agentBin); err != nil {
		return fmt.Errorf("%w\nlogs are in %s; stop everything with: make local-down", err, tb.Dir)
	}
	if *passThrough {
		if err := framework.InstallPassThrough(ctx, tb.Parent); err != nil {
			return fmt.Errorf("%w\nlogs are in %s; stop everything with: make local-down", err, tb.Dir)
		}
		fmt.Println("local-up: applied deploy/optional/anonymous-passthrough.yaml: anonymous clients of the parent may pass child credentials through")
	}
	parent := tb.Parent
	for _, args := range [][]string{{"get", "clsrr"}, {"get", "mcls", "-A", "-o", "wide"}} {
		if err := show(ctx, parent, args...); err != nil {
			return err
		}
	}
	idList, _ := parent.Kubectl(ctx, "get", "mcls", "-A", "-o", `jsonpath={range .items[*]}{.spec.clusterId}{" "}{end}`).Output()
	ids := strings.Fields(string(idList))
	binDir := filepath.Dir(hubBin)
	if err := distribute(ctx, tb, binDir, ids); err != nil {
		return fmt.Errorf("%w\nlogs are in %s; stop everything with: make local-down", err, tb.Dir)
	}
	for _, args := range [][]string{{"clusternet", "get", "subs", "-A"}, {"clusternet", "get", "desc", "-A"}, {"clusternet", "get", "hr", "-A"}} {
		if err := show(ctx, parent, args...); err != nil {
			return err
		}
	}
	id := ids[0]
	bins, _ := testbed.LocateBinaries()
	fmt.Printf(`Clusternet is up in %s: a parent with clusternet-hub, two children registered by clusternet-agent,
each holding a tunnel to the hub, and upstream Clusternet's app-demo deployed to both. It was applied from
%s, a copy of examples/applications with three local edits: the
children's cluster ids, apiVersion v1 for the Service feed, and a chart repository on loopback.

  export KUBECONFIG=%s
  export PATH=%s:$PATH               # kubectl finds kubectl-clusternet
  alias kubectl=%s
  kubectl get clsrr                  # registrations
  kubectl get mcls -A -o wide        # child clusters and their health
  kubectl clusternet get deploy -n foo              # the templates
  kubectl clusternet get desc -A                    # what each child gets, and how it went
  kubectl clusternet --cluster %s get deploy,svc -n foo   # the app in a child, through the tunnel
  # any kubectl command on a child, through the parent and the tunnel (each child binds the parent's
  # kubernetes-admin to cluster-admin: system:masters itself stays in the parent, docs/tunnel.md):
  kubectl --server=%s/apis/proxies.clusternet.io/v1alpha1/sockets/%s/proxy/direct get nodes

Children's own kubeconfigs: %s
Logs: %s/*.log
Stop everything with: make local-down
`, time.Since(start).Round(100*time.Millisecond), filepath.Join(tb.Dir, "app-demo", "applications"),
		parent.Kubeconfig, binDir, bins.Kubectl, id, parent.URL, id,
		strings.Join([]string{tb.Children[0].Kubeconfig, tb.Children[1].Kubeconfig}, " "), tb.Dir)
	return nil
}

func setUp(ctx context.Context, tb *testbed.Testbed, hubBin, agentBin string) error {
	parent := tb.Parent
	root := framework.Root()
	if err := framework.InstallParent(ctx, parent); err != nil {
		return err
	}
	// The hub and agents run with the args their charts render (StartHub
	// and AgentChartArgs), plus only what differs on loopback.
	if _, err := framework.StartHub(ctx, filepath.Join(tb.Dir, "hub-pki"), tb.Run, parent, hubBin); err != nil {
		return err
	}
	agentChart, err := framework.AgentChartArgs(parent)
	if err != nil {
		return err
	}
	agentArgs := agentChart.Args
	template, err := os.ReadFile(filepath.Join(root, "deploy", "templates", "clusternet_agent_secret.yaml"))
	if err != nil {
		return err
	}
	for _, child := range tb.Children {
		// What `PARENTURL=... REGTOKEN=... envsubst < template | kubectl apply -f -` does.
		secret := strings.NewReplacer("${PARENTURL}", parent.URL, "${REGTOKEN}", framework.BootstrapToken(parent)).Replace(string(template))
		for _, step := range []struct {
			stdin string
			args  []string
		}{
			{"", []string{"apply", "-f", filepath.Join(root, "deploy", "agent", "00-namespace.yaml")}},
			{secret, []string{"apply", "-f", "-"}},
		} {
			cmd := child.Kubectl(ctx, step.args...)
			cmd.Stdin = strings.NewReader(step.stdin)
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("%s: kubectl %s: %w\n%s", child.Name, strings.Join(step.args, " "), err, out)
			}
		}
		// The testbed's parent has a private CA; an agent in a pod would read it
		// from parentCA in the registration Secret.
		args := append([]string{"--kubeconfig", child.Kubeconfig, "--parent-ca-file", parent.CAFile}, agentArgs...)
		// Each agent's probes and metrics on ports of its own (in a pod they
		// have the pod's network to themselves).
		probeArgs, release, err := framework.ProbeArgs()
		if err != nil {
			return err
		}
		defer release()
		args = append(args, probeArgs...)
		if _, err := tb.Run("clusternet-agent-"+child.Name, agentBin, args...); err != nil {
			return err
		}
	}
	// The proxy forwards the parent admin as user kubernetes-admin without
	// its system:masters group: each child's admin decides what it may do
	// there. Here, as the children's admin, we let it do everything.
	for _, child := range tb.Children {
		if err := framework.GrantParentAdmin(ctx, child); err != nil {
			return fmt.Errorf("%s: %w", child.Name, err)
		}
	}
	fmt.Println("local-up: waiting for both children to register and open their tunnels...")
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		out, err := parent.Kubectl(ctx, "get", "mcls", "-A", "-o", `jsonpath={range .items[*]}{.status.readyz}/{.status.useSocket}{"\n"}{end}`).Output()
		return err == nil && strings.Count(string(out), "true/true") == len(tb.Children), nil
	})
}

// show runs kubectl against c and prints the command and its output.
func show(ctx context.Context, c *testbed.Cluster, args ...string) error {
	cmd := c.Kubectl(ctx, args...)
	cmd.Env = append(cmd.Env, "PATH="+filepath.Dir(os.Args[0])+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("kubectl %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	fmt.Printf("$ kubectl %s\n%s\n", strings.Join(args, " "), out)
	return nil
}
