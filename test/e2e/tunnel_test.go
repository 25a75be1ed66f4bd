package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/component-base/metrics/testutil"

	proxiesv1alpha1 "github.com/clusternet/clusternet/pkg/apis/proxies/v1alpha1"
	"github.com/clusternet/clusternet/pkg/server/hub/sockets"
	"github.com/clusternet/clusternet/test/framework"
	"github.com/clusternet/clusternet/test/testbed"
)

// proxyKubeconfig writes what the seed README's "Visit ManagedCluster With
// RBAC" makes by hand: the parent's kubeconfig with the server moved onto
// sockets/<id>/proxy/<mode>, and, when edit is set, the user edited as the
// seed does with vim.
func proxyKubeconfig(t *testing.T, parent *testbed.Cluster, id, mode string, edit func(*clientcmdapi.AuthInfo)) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(parent.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	cfg.Clusters[ctx.Cluster].Server = parent.URL + "/apis/proxies.clusternet.io/v1alpha1/sockets/" + id + "/proxy/" + mode
	if edit != nil {
		user := &clientcmdapi.AuthInfo{}
		edit(user)
		cfg.AuthInfos[ctx.AuthInfo] = user
	}
	path := filepath.Join(t.TempDir(), "config-cluster-"+id)
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// kubectlWith runs the real kubectl with a given kubeconfig.
func kubectlWith(t *testing.T, c *testbed.Cluster, kubeconfig, stdin string, args ...string) (string, string, error) {
	t.Helper()
	return kubectl(t, c, stdin, append(args, "--kubeconfig", kubeconfig)...)
}

func TestTunnelAndProxy(t *testing.T) {
	tb := testbed.ForTest(t, 2)
	parent, child1, child2 := tb.Parent, tb.Children[0], tb.Children[1]
	hub := setUpParent(t, parent)
	startBinary(t, "agent-child1", "agent", framework.AgentArgs(parent, child1, "--cluster-status-update-frequency=2s")...)
	agent2 := startBinary(t, "agent-child2", "agent", framework.AgentArgs(parent, child2, "--cluster-status-update-frequency=2s")...)
	id1, id2 := kubeSystemUID(t, child1), kubeSystemUID(t, child2)
	waitFor(t, 30*time.Second, "both tunnels up (useSocket)", func(context.Context) (bool, string) {
		out, _, _ := kubectl(t, parent, "", "get", "mcls", "-A", "-o", "jsonpath={range .items[*]}{.status.useSocket}{\"\\n\"}{end}")
		return strings.Count(out, "true") == 2, out
	})

	impersonating := proxyKubeconfig(t, parent, id1, "direct", nil)

	t.Run("impersonation: the child sees the parent's user", func(t *testing.T) {
		// The parent's admin arrives as its user name; its system:masters
		// stays in the parent (the child adds system:authenticated itself).
		out, errOut, err := kubectlWith(t, parent, impersonating, "", "auth", "whoami", "-o", `jsonpath={.status.userInfo.username} {.status.userInfo.groups}`)
		if err != nil || out != `kubernetes-admin ["system:authenticated"]` {
			t.Errorf("whoami in the child = %q, %v %s: want kubernetes-admin without system:masters", out, err, errOut)
		}
		_, errOut, err = kubectlWith(t, parent, impersonating, "", "get", "nodes", "-o", "name")
		if err == nil || !strings.Contains(errOut, `User "kubernetes-admin" cannot list resource "nodes"`) {
			t.Errorf("get nodes before the child granted anything: err=%v %s: want the child's RBAC to refuse", err, errOut)
		}
		// The child's admin decides what the parent's admin may do there;
		// every subtest below reaches child1 as cluster-admin through this.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := framework.GrantParentAdmin(ctx, child1); err != nil {
			t.Fatal(err)
		}
		out, _, err = kubectlWith(t, parent, impersonating, "", "get", "nodes", "-o", "name")
		if err != nil || strings.TrimSpace(out) != "node/child1-node-0" {
			t.Errorf("get nodes through the proxy = %q, %v: want child1's node", out, err)
		}
	})

	t.Run("get -w receives an event", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		watch := parent.Kubectl(ctx, "get", "configmaps", "-n", "default", "-w", "--output-watch-events", "-o", "name", "--kubeconfig", impersonating)
		stdout, err := watch.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := watch.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cancel(); _ = watch.Wait() }()
		lines := make(chan string, 16)
		go func() {
			buf := make([]byte, 4096)
			for {
				n, err := stdout.Read(buf)
				for _, l := range strings.Split(string(buf[:n]), "\n") {
					if l != "" {
						lines <- l
					}
				}
				if err != nil {
					close(lines)
					return
				}
			}
		}()
		// The watch lists first (kube-root-ca.crt): then the object made after it.
		waitLine := func(want string) {
			t.Helper()
			for {
				select {
				case l, ok := <-lines:
					if !ok {
						t.Fatalf("watch ended before %q", want)
					}
					if strings.Contains(l, want) {
						return
					}
				case <-ctx.Done():
					t.Fatalf("no %q from the watch", want)
				}
			}
		}
		waitLine("configmap/kube-root-ca.crt")
		mustKubectl(t, child1, "", "create", "configmap", "made-in-child", "-n", "default")
		waitLine("made-in-child")
	})

	t.Run("apply through the proxy lands in the child only", func(t *testing.T) {
		manifest := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: via-proxy, namespace: default}\ndata: {a: b}\n"
		out, errOut, err := kubectlWith(t, parent, impersonating, manifest, "apply", "-f", "-")
		if err != nil || strings.TrimSpace(out) != "configmap/via-proxy created" {
			t.Fatalf("apply = %q, %v %s", out, err, errOut)
		}
		if got := mustKubectl(t, child1, "", "get", "cm", "via-proxy", "-o", "jsonpath={.data.a}"); got != "b" {
			t.Errorf("child1 has data.a = %q", got)
		}
		for _, c := range []*testbed.Cluster{parent, child2} {
			if _, _, err := kubectl(t, c, "", "get", "cm", "via-proxy"); err == nil {
				t.Errorf("the ConfigMap also exists in %s", c.Name)
			}
		}
	})

	t.Run("logs, logs -f, exec and port-forward stream through the tunnel", func(t *testing.T) {
		mustKubectl(t, child1, "", "run", "web", "--image=nginx", "-n", "default")
		mustKubectl(t, child1, "", "wait", "pod/web", "-n", "default", "--for=jsonpath={.status.phase}=Running", "--timeout=60s")

		out, errOut, err := kubectlWith(t, parent, impersonating, "", "logs", "web", "-n", "default")
		if err != nil || !strings.Contains(out, "testbed container started") {
			t.Errorf("logs = %q, %v %s", out, err, errOut)
		}

		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		follow := parent.Kubectl(ctx, "logs", "-f", "web", "-n", "default", "--kubeconfig", impersonating)
		stdout, err := follow.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := follow.Start(); err != nil {
			t.Fatal(err)
		}
		got, started := make(chan string, 1), make(chan struct{})
		go func() {
			var seen strings.Builder
			buf := make([]byte, 4096)
			signalled := false
			for {
				n, err := stdout.Read(buf)
				seen.Write(buf[:n])
				if !signalled && strings.Contains(seen.String(), "testbed container started") {
					close(started) // the follower has read what was there: it is following now
					signalled = true
				}
				if strings.Contains(seen.String(), "written while following") || err != nil {
					got <- seen.String()
					return
				}
			}
		}()
		select {
		case <-started:
		case <-ctx.Done():
			t.Fatal("logs -f printed nothing")
		}
		if err := child1.AppendPodLog("written while following"); err != nil {
			t.Fatal(err)
		}
		select {
		case out := <-got:
			if !strings.Contains(out, "written while following") {
				t.Errorf("logs -f output %q lacks the line written while following", out)
			}
		case <-ctx.Done():
			t.Error("logs -f did not stream the new line")
		}
		cancel()
		_ = follow.Wait()

		for _, transport := range []struct{ name, env string }{
			{"websocket", "KUBECTL_REMOTE_COMMAND_WEBSOCKETS=true"}, {"spdy", "KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false"},
		} {
			cmd := parent.Kubectl(context.Background(), "exec", "web", "-n", "default", "--kubeconfig", impersonating, "--", "sh", "-c", "echo $TESTBED_CLUSTER")
			cmd.Env = append(cmd.Env, transport.env)
			out, err := cmd.CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != "child1" {
				t.Errorf("exec over %s = %q, %v", transport.name, out, err)
			}
		}

		for _, transport := range []struct{ name, env string }{
			{"websocket", "KUBECTL_PORT_FORWARD_WEBSOCKETS=true"}, {"spdy", "KUBECTL_PORT_FORWARD_WEBSOCKETS=false"},
		} {
			port, release, err := testbed.ReservePort()
			if err != nil {
				t.Fatal(err)
			}
			release()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			pf := parent.Kubectl(ctx, "port-forward", "pod/web", "-n", "default", fmt.Sprintf("%d:2379", port), "--kubeconfig", impersonating)
			pf.Env = append(pf.Env, transport.env)
			if err := pf.Start(); err != nil {
				cancel()
				t.Fatal(err)
			}
			var body string
			waitFor(t, 15*time.Second, "port-forward over "+transport.name, func(ctx context.Context) (bool, string) {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/health", port), nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return false, err.Error()
				}
				defer func() { _ = resp.Body.Close() }()
				b, _ := io.ReadAll(resp.Body)
				body = string(b)
				return true, ""
			})
			if !strings.Contains(body, `"health":"true"`) {
				t.Errorf("port-forward over %s reached %q, want etcd's health", transport.name, body)
			}
			cancel()
			_ = pf.Wait()
		}
	})

	t.Run("seed pass-through: a child token decides in the child", func(t *testing.T) {
		installPassThrough(t, parent)
		mustKubectl(t, child1, "", "create", "serviceaccount", "viewer", "-n", "default")
		mustKubectl(t, child1, "", "create", "rolebinding", "viewer", "-n", "default", "--clusterrole=view", "--serviceaccount=default:viewer")
		token := strings.TrimSpace(mustKubectl(t, child1, "", "create", "token", "viewer", "-n", "default"))
		cfg := proxyKubeconfig(t, parent, id1, "direct", func(u *clientcmdapi.AuthInfo) {
			u.Username, u.Impersonate = "system:anonymous", "clusternet"
			u.ImpersonateUserExtra = map[string][]string{"clusternet-token": {token}}
		})
		out, errOut, err := kubectlWith(t, parent, cfg, "", "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
		if err != nil || out != "system:serviceaccount:default:viewer" {
			t.Fatalf("whoami with the passed token = %q, %v %s", out, err, errOut)
		}
		if _, _, err := kubectlWith(t, parent, cfg, "", "get", "configmaps", "-n", "default"); err != nil {
			t.Errorf("view may list configmaps: %v", err)
		}
		_, errOut, err = kubectlWith(t, parent, cfg, "", "get", "secrets", "-n", "default")
		if err == nil || !strings.Contains(errOut, `cannot list resource "secrets"`) {
			t.Errorf("view may not list secrets, got err=%v %s", err, errOut)
		}
	})

	t.Run("seed pass-through: a child client certificate", func(t *testing.T) {
		installPassThrough(t, parent)
		cert := mustKubectl(t, child1, "", "config", "view", "--raw", "-o", "jsonpath={.users[0].user.client-certificate-data}")
		key := mustKubectl(t, child1, "", "config", "view", "--raw", "-o", "jsonpath={.users[0].user.client-key-data}")
		cfg := proxyKubeconfig(t, parent, id1, "direct", func(u *clientcmdapi.AuthInfo) {
			u.Username, u.Impersonate = "system:anonymous", "clusternet"
			u.ImpersonateUserExtra = map[string][]string{"clusternet-certificate": {cert}, "clusternet-privatekey": {key}}
		})
		out, errOut, err := kubectlWith(t, parent, cfg, "", "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
		if err != nil || out != "kubernetes-admin" {
			t.Fatalf("whoami with the passed certificate = %q, %v %s", out, err, errOut)
		}
	})

	t.Run("https/<host> reaches only the child's own apiserver", func(t *testing.T) {
		host := strings.TrimPrefix(child1.URL, "https://")
		cfg := proxyKubeconfig(t, parent, id1, "https/"+host, nil)
		if out, errOut, err := kubectlWith(t, parent, cfg, "", "get", "ns", "default", "-o", "name"); err != nil || strings.TrimSpace(out) != "namespace/default" {
			t.Errorf("proxy/https/%s: %q %v %s", host, out, err, errOut)
		}
		other := strings.TrimPrefix(child2.URL, "https://")
		cfg = proxyKubeconfig(t, parent, id1, "https/"+other, nil)
		_, errOut, err := kubectlWith(t, parent, cfg, "", "get", "ns")
		if err == nil || !strings.Contains(errOut, "does not dial") {
			t.Errorf("child1's agent dialled %s: err=%v %s", other, err, errOut)
		}
	})

	t.Run("security", func(t *testing.T) {
		// Cluster A's agent token against cluster B's socket.
		tokenA := mustKubectl(t, child1, "", "get", "secret", "-n", "clusternet-system", "clusternet-agent-credentials", "-o", "go-template={{.data.token | base64decode}}")
		tlsConfig, err := (&testbed.Cluster{CAFile: parent.CAFile}).TLSConfig()
		if err != nil {
			t.Fatal(err)
		}
		dialer := websocket.Dialer{TLSClientConfig: tlsConfig, HandshakeTimeout: 10 * time.Second}
		// A parent user without rights on sockets (tunnel or proxy).
		mustKubectl(t, parent, "", "create", "serviceaccount", "nobody", "-n", "default")
		token := strings.TrimSpace(mustKubectl(t, parent, "", "create", "token", "nobody", "-n", "default"))
		// Every other party at cluster B's tunnel, at both places a tunnel
		// opens (the subresource, and the bare socket older agents use), past
		// the hub's burst of tunnel opens too: each is refused for who it is,
		// every time (never a 429 that would mean it counted against B's
		// opens). Anonymous may be unauthenticated (401) or denied (403).
		parties := []struct {
			name   string
			header http.Header
			codes  []int
		}{
			{"cluster A's agent", http.Header{"Authorization": {"Bearer " + tokenA}}, []int{http.StatusForbidden}},
			{"the bootstrap token", http.Header{"Authorization": {"Bearer " + framework.BootstrapToken(parent)}}, []int{http.StatusForbidden}},
			{"a namespace user", http.Header{"Authorization": {"Bearer " + token}}, []int{http.StatusForbidden}},
			{"an anonymous client", nil, []int{http.StatusUnauthorized, http.StatusForbidden}},
		}
		for _, p := range parties {
			for _, path := range []string{proxiesv1alpha1.TunnelPath(id2), proxiesv1alpha1.SocketPath(id2)} {
				for range sockets.TunnelOpensBurst + 1 {
					ws, resp, err := dialer.Dial("wss://"+strings.TrimPrefix(parent.URL, "https://")+path, p.header)
					if err == nil {
						_ = ws.Close()
						t.Fatalf("%s opened cluster B's tunnel at %s", p.name, path)
					}
					if resp == nil || !slices.Contains(p.codes, resp.StatusCode) {
						t.Fatalf("%s at B's %s: %v (status %v), want %v", p.name, path, err, resp, p.codes)
					}
				}
			}
		}
		// The namespace user at the proxy.
		cfg := proxyKubeconfig(t, parent, id1, "direct", func(u *clientcmdapi.AuthInfo) { u.Token = token })
		_, errOut, err := kubectlWith(t, parent, cfg, "", "get", "ns")
		if err == nil || !strings.Contains(errOut, "cannot get resource \"sockets/proxy\"") {
			t.Errorf("a user without sockets/proxy rights: err=%v %s", err, errOut)
		}
		// With the optional pass-through manifest anyone may impersonate user
		// clusternet (the seed's anonymous kubeconfigs do), but without child
		// credentials that gets nowhere.
		installPassThrough(t, parent)
		cfg = proxyKubeconfig(t, parent, id1, "direct", func(u *clientcmdapi.AuthInfo) {
			u.Username, u.Impersonate = "system:anonymous", "clusternet"
		})
		_, errOut, err = kubectlWith(t, parent, cfg, "", "get", "ns")
		if err == nil || !strings.Contains(errOut, "carries none") {
			t.Errorf("anonymous as clusternet without credentials: err=%v %s", err, errOut)
		}
		// A made-up cluster id costs the hub nothing and says so.
		cfg = proxyKubeconfig(t, parent, "00000000-0000-0000-0000-000000000000", "direct", nil)
		_, errOut, err = kubectlWith(t, parent, cfg, "", "get", "ns", "--request-timeout=3s")
		if err == nil || !strings.Contains(errOut, "could not find the requested resource") {
			t.Errorf("an unknown cluster id: err=%v %s", err, errOut)
		}
		// An agent may not relabel its ManagedCluster to draw other
		// clusters' Subscriptions (or their sockets).
		ns := mustKubectl(t, parent, "", "get", "mcls", "-A", "-l", "clusters.clusternet.io/cluster-id="+id1, "-o", "jsonpath={.items[0].metadata.namespace}")
		agentCfg := proxyKubeconfig(t, parent, id1, "direct", nil)
		agentCfgData, err := clientcmd.LoadFromFile(agentCfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range agentCfgData.Clusters {
			c.Server = parent.URL
		}
		for _, u := range agentCfgData.AuthInfos {
			*u = clientcmdapi.AuthInfo{Token: tokenA}
		}
		if err := clientcmd.WriteToFile(*agentCfgData, agentCfg); err != nil {
			t.Fatal(err)
		}
		name := mustKubectl(t, parent, "", "get", "mcls", "-n", ns, "-o", "jsonpath={.items[0].metadata.name}")
		_, errOut, err = kubectlWith(t, parent, agentCfg, "", "label", "mcls", "-n", ns, name, "team=payments")
		// Refused by RBAC (the agent may read and write only its status) or,
		// were RBAC loosened, by the admission policy.
		refused := strings.Contains(errOut, "may update only the status of its ManagedCluster") || strings.Contains(errOut, `cannot get resource "managedclusters"`) ||
			strings.Contains(errOut, `cannot patch resource "managedclusters"`)
		if err == nil || !refused {
			t.Errorf("an agent relabelled its ManagedCluster: err=%v %s", err, errOut)
		}
		if got := mustKubectl(t, parent, "", "get", "mcls", "-n", ns, name, "-o", "jsonpath={.metadata.labels.team}"); got != "" {
			t.Errorf("the agent's relabel went through: team=%q", got)
		}
	})

	t.Run("tunnels hold no seat of the parent's API Priority and Fairness", func(t *testing.T) {
		// A tunnel the parent does not count as long-running holds a seat
		// of the agents' priority level (workload-low) while it lives: a
		// few hundred of them stall every service account of the parent.
		// With both tunnels up, the level is idle most of the time.
		fewest := -1.0
		for range 10 {
			if seats := executingSeats(t, parent, "workload-low"); fewest < 0 || seats < fewest {
				fewest = seats
			}
			time.Sleep(200 * time.Millisecond)
		}
		if fewest >= 2 {
			t.Errorf("workload-low had at least %v seats executing in each of 10 samples with 2 tunnels up: the tunnels hold seats", fewest)
		}
	})

	t.Run("hub restart: proxying is back within 5s", func(t *testing.T) {
		start := time.Now()
		if err := hub.Restart(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "the proxy after a hub restart", func(context.Context) (bool, string) {
			out, errOut, err := kubectlWith(t, parent, impersonating, "", "get", "ns", "default", "-o", "name", "--request-timeout=2s")
			return err == nil && strings.TrimSpace(out) == "namespace/default", fmt.Sprint(err, errOut)
		})
		t.Logf("proxy back %s after the hub restart began", time.Since(start).Round(10*time.Millisecond))
	})

	t.Run("seed http variant: kubectl proxy in the child", func(t *testing.T) {
		// The agent reaches a kubectl proxy only when told to (--proxy-allowed-hosts).
		port, release, err := testbed.ReservePort()
		if err != nil {
			t.Fatal(err)
		}
		release()
		host := fmt.Sprintf("127.0.0.1:%d", port)
		startKubectlProxy(t, child2, port)
		// One agent per cluster: a second one would take the socket over from the first, back and forth.
		if err := agent2.Stop(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		startBinary(t, "agent-child2-http", "agent", framework.AgentArgs(parent, child2, "--cluster-status-update-frequency=2s", "--proxy-allowed-hosts", host)...)
		// The seed's kubeconfig here says username: system:anonymous, which needs
		// anonymous access to sockets/proxy on the parent; deploy/ does not grant
		// that, so the parent's admin goes through instead.
		cfg := proxyKubeconfig(t, parent, id2, "http/"+host, nil)
		waitFor(t, 20*time.Second, "get ns through proxy/http and kubectl proxy", func(context.Context) (bool, string) {
			out, errOut, err := kubectlWith(t, parent, cfg, "", "get", "nodes", "-o", "name")
			return err == nil && strings.TrimSpace(out) == "node/child2-node-0", out + errOut
		})
	})

	t.Run("parent apiserver restart: proxying is back within 5s", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := parent.RestartAPIServer(ctx); err != nil {
			t.Fatal(err)
		}
		ready := time.Now()
		waitFor(t, 5*time.Second, "the proxy after a parent apiserver restart", func(context.Context) (bool, string) {
			out, errOut, err := kubectlWith(t, parent, impersonating, "", "get", "ns", "default", "-o", "name", "--request-timeout=2s")
			return err == nil && strings.TrimSpace(out) == "namespace/default", fmt.Sprint(err, errOut)
		})
		t.Logf("proxy back %s after the restarted parent apiserver was ready", time.Since(ready).Round(10*time.Millisecond))
	})

	t.Run("a bad proxy path is refused with the fix", func(t *testing.T) {
		out, errOut, _ := kubectl(t, parent, "", "get", "--raw", "/apis/proxies.clusternet.io/v1alpha1/sockets/"+id1+"/proxy/ftp/x/api")
		if !strings.Contains(out+errOut, "must start with direct/, https/<host>/ or http/<host>/") {
			t.Errorf("bad path answer: %s %s", out, errOut)
		}
	})
}

// installPassThrough opts the parent in to the seed's anonymous credential
// pass-through (deploy/optional/anonymous-passthrough.yaml).
func installPassThrough(t *testing.T, parent *testbed.Cluster) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := framework.InstallPassThrough(ctx, parent); err != nil {
		t.Fatal(err)
	}
}

// startKubectlProxy runs the seed's `kubectl proxy` in a child, on loopback.
func startKubectlProxy(t *testing.T, c *testbed.Cluster, port int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := c.Kubectl(ctx, "proxy", "--address=127.0.0.1", fmt.Sprintf("--port=%d", port), "--accept-hosts=^.*$")
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
}

// executingSeats is the parent's apiserver_flowcontrol_current_executing_seats
// of one priority level.
func executingSeats(t *testing.T, parent *testbed.Cluster, level string) float64 {
	t.Helper()
	families, err := testutil.TextToMetricFamilies(strings.NewReader(mustKubectl(t, parent, "", "get", "--raw", "/metrics")))
	if err != nil {
		t.Fatal(err)
	}
	var seats float64
	for _, m := range families["apiserver_flowcontrol_current_executing_seats"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "priority_level" && l.GetValue() == level {
				seats += m.GetGauge().GetValue()
			}
		}
	}
	return seats
}
