package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/clusternet/clusternet/test/framework"
	"github.com/clusternet/clusternet/test/testbed"
)

// cliRuns is how many times each command line is timed.
const cliRuns = 30

// cliPair is one comparison: the plugin's command against plain kubectl
// reading the same objects.
type cliPair struct {
	what                  string
	plugin, kubectl       []string
	pluginP50, kubectlP50 time.Duration
	pluginP90, kubectlP90 time.Duration
	// direct is kubectl-clusternet run by itself, without kubectl's lookup.
	directP50 time.Duration
	skipped   string
}

type cliResults struct {
	pairs []*cliPair
}

// benchCLI times `kubectl clusternet ...` (kubectl finds the plugin on PATH
// and execs it) against plain kubectl for the same objects, as wall time of
// whole processes, alternating the two so drift hits both alike. Both use
// one warm discovery cache, as a user's shell does.
func benchCLI(ctx context.Context, tb *testbed.Testbed, hubBin, agentBin, pluginBin string) (*cliResults, error) {
	parent, child := tb.Parent, tb.Children[0]
	hub, err := startHub(ctx, tb.Dir, "hub-cli", parent, hubBin)
	if err != nil {
		return nil, err
	}
	defer stopProcess(hub.Process)
	agent, err := startAgent(ctx, tb.Dir, agentBin, parent, child, agentOptions{
		name: "agent-cli", args: []string{"--cluster-status-update-frequency=2s"}, grantParentAdmin: true})
	if err != nil {
		return nil, err
	}
	defer stopProcess(agent.Process)
	id := agent.id
	bins, err := testbed.LocateBinaries()
	if err != nil {
		return nil, err
	}
	cacheDir := filepath.Join(tb.Dir, "kube-cache")
	env := append(os.Environ(), "KUBECONFIG="+parent.Kubeconfig,
		"PATH="+filepath.Dir(pluginBin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	kubectl := func(ctx context.Context, args ...string) (string, error) {
		binary := bins.Kubectl
		if len(args) > 0 && args[0] == "kubectl-clusternet" {
			binary, args = pluginBin, args[1:]
		}
		cmd := exec.CommandContext(ctx, binary, append(args, "--cache-dir", cacheDir)...)
		cmd.Env = env
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("kubectl %s: %w\n%s", strings.Join(args, " "), err, errOut.String())
		}
		return out.String(), nil
	}
	// The child's tunnel is up once the proxy answers.
	if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := kubectl(ctx, "clusternet", "--cluster", id, "get", "ns", "default")
		return err == nil, nil
	}); err != nil {
		return nil, fmt.Errorf("the child through the plugin: %w", err)
	}
	// Plain kubectl through the same proxy path, as the kubeconfig edit of upstream Clusternet's README does.
	proxyKubeconfig := filepath.Join(tb.Dir, "child-through-parent.kubeconfig")
	cfg, err := clientcmd.LoadFromFile(parent.Kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.Clusters[cfg.Contexts[cfg.CurrentContext].Cluster].Server = parent.URL + "/apis/proxies.clusternet.io/v1alpha1/sockets/" + id + "/proxy/direct"
	if err := clientcmd.WriteToFile(*cfg, proxyKubeconfig); err != nil {
		return nil, err
	}

	res := &cliResults{pairs: []*cliPair{
		{what: "client only (process start, plugin lookup)", plugin: []string{"clusternet", "version", "--client"}, kubectl: []string{"version", "--client"}},
		{what: "ManagedClusters in the parent", plugin: []string{"clusternet", "get", "mcls", "-A"}, kubectl: []string{"get", "mcls", "-A"}},
		{what: "pods of the child through the parent", plugin: []string{"clusternet", "--cluster", id, "get", "pods", "-A"},
			kubectl: []string{"get", "pods", "-A", "--kubeconfig", proxyKubeconfig}},
	}}
	// Templates: only if the hub serves the shadow API.
	shadow := &cliPair{what: "templates (Deployments) against the Manifests that hold them",
		plugin: []string{"clusternet", "get", "deploy", "-A"}, kubectl: []string{"get", "manifests", "-n", "clusternet-reserved"}}
	res.pairs = append(res.pairs, shadow)
	if _, err := kubectl(ctx, "get", "--raw", "/apis/shadow/v1alpha1"); err != nil {
		shadow.skipped = "not measured: the hub does not serve the shadow API yet"
	} else if _, err := kubectl(ctx, "clusternet", "apply", "-f", filepath.Join(framework.Root(), "examples", "applications")); err != nil {
		shadow.skipped = "not measured: " + firstLine(err.Error())
	}

	for _, p := range res.pairs {
		if p.skipped != "" {
			continue
		}
		// Warm the discovery cache and the connections of both.
		for range 2 {
			if _, err := kubectl(ctx, p.plugin...); err != nil {
				return nil, err
			}
			if _, err := kubectl(ctx, p.kubectl...); err != nil {
				return nil, err
			}
		}
		direct := append([]string{"kubectl-clusternet"}, p.plugin[1:]...)
		var pt, kt, dt []time.Duration
		for range cliRuns {
			for _, run := range []struct {
				args []string
				into *[]time.Duration
			}{{p.plugin, &pt}, {p.kubectl, &kt}, {direct, &dt}} {
				start := time.Now()
				if _, err := kubectl(ctx, run.args...); err != nil {
					return nil, err
				}
				*run.into = append(*run.into, time.Since(start))
			}
		}
		slices.Sort(pt)
		slices.Sort(kt)
		slices.Sort(dt)
		p.directP50 = percentile(dt, 0.5)
		p.pluginP50, p.pluginP90 = percentile(pt, 0.5), percentile(pt, 0.9)
		p.kubectlP50, p.kubectlP90 = percentile(kt, 0.5), percentile(kt, 0.9)
	}
	return res, nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func cliSection(r *cliResults) string {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d.Microseconds())/1000) }
	var b strings.Builder
	fmt.Fprintf(&b, "## kubectl clusternet get: wall time against plain kubectl get\n\n")
	fmt.Fprintf(&b, "Measured %s on %s/%s, %d CPUs, Kubernetes %s (testbed), %d runs of each command line, alternating.\n\n",
		time.Now().UTC().Format("2006-01-02"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), testbed.KubeVersion(), cliRuns)
	fmt.Fprintf(&b, "Command: `make bench` (`go run ./test/bench ... --plugin bin/kubectl-clusternet`, or `--only cli`)\n\n")
	fmt.Fprintf(&b, "Whole processes, as a user runs them: `kubectl clusternet` is kubectl finding the plugin on PATH and\n")
	fmt.Fprintf(&b, "exec'ing it, so it pays for two process starts. Both sides share one warm discovery cache.\n\n")
	fmt.Fprintf(&b, "| what | `kubectl clusternet ...` p50 (p90) | `kubectl ...` p50 (p90) | ratio p50 | `kubectl-clusternet ...` alone p50 |\n|---|---|---|---|---|\n")
	for _, p := range r.pairs {
		if p.skipped != "" {
			fmt.Fprintf(&b, "| %s | %s | | | |\n", p.what, p.skipped)
			continue
		}
		fmt.Fprintf(&b, "| %s<br>`kubectl %s`<br>`kubectl %s` | %s (%s) | %s (%s) | %.2fx | %s |\n", p.what,
			strings.Join(p.plugin, " "), strings.Join(p.kubectl, " "),
			ms(p.pluginP50), ms(p.pluginP90), ms(p.kubectlP50), ms(p.kubectlP90), float64(p.pluginP50)/float64(p.kubectlP50), ms(p.directP50))
	}
	fmt.Fprintf(&b, "\nTarget: `kubectl clusternet get` ≤ 1.2x `kubectl get` of the same objects. The last column is the plugin's\n")
	fmt.Fprintf(&b, "own share: the rest of the difference is kubectl starting, finding `kubectl-clusternet` on PATH and exec'ing it\n")
	fmt.Fprintf(&b, "(about one `kubectl version --client`), which every kubectl plugin pays. The plugin skips kubectl's\n")
	fmt.Fprintf(&b, "translation catalogue for English locales (pkg/cli/englishhelp), which halved its start.\n")
	return b.String()
}
