package main

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/clusternet/clusternet/pkg/server/hub/certs"
	"github.com/clusternet/clusternet/pkg/server/hub/peers"
	"github.com/clusternet/clusternet/test/framework"
	"github.com/clusternet/clusternet/test/testbed"
)

type replicaResults struct {
	holderP50, holderP99       time.Duration
	forwardedP50, forwardedP99 time.Duration
}

// benchReplicas compares a proxied GET sent straight to the hub replica
// holding the cluster's tunnel with the same GET sent to another replica,
// which forwards it to the holder (mutual TLS, the caller's identity in
// X-Remote-* headers, authorized again there). Both skip the parent, so the
// difference is the forwarding hop alone.
func benchReplicas(ctx context.Context, dir, hubBin, agentBin string) (*replicaResults, error) {
	tb, err := testbed.Up(ctx, testbed.Options{Dir: filepath.Join(dir, "replicas"), Children: 1})
	if err != nil {
		return nil, err
	}
	defer tb.Down()
	parent, child := tb.Parent, tb.Children[0]
	if err := framework.InstallParent(ctx, parent); err != nil {
		return nil, err
	}
	hubs, err := framework.StartHubs(ctx, filepath.Join(tb.Dir, "hubs"), framework.InDir(tb.Dir), parent, hubBin, 2)
	if err != nil {
		return nil, err
	}
	defer hubs.Stop()
	holder, forwarder := hubs.Replicas[0], hubs.Replicas[1]
	// The agent's tunnel lands on replica 0.
	hubs.Balancer.SetBackends(net.JoinHostPort("127.0.0.1", strconv.Itoa(holder.Port)))
	agent, err := startAgent(ctx, tb.Dir, agentBin, parent, child, agentOptions{name: "agent-replicas", grantParentAdmin: true})
	if err != nil {
		return nil, err
	}
	defer stopProcess(agent.Process)
	kube, err := parent.Clientset()
	if err != nil {
		return nil, err
	}
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		l, err := kube.CoordinationV1().Leases("clusternet-system").Get(ctx, peers.LeasePrefix+agent.id, metav1.GetOptions{})
		return err == nil && strings.HasSuffix(ptr.Deref(l.Spec.HolderIdentity, ""), "_"+strconv.Itoa(holder.Pid)), nil
	}); err != nil {
		return nil, fmt.Errorf("the tunnel never reached replica 0: %w\n%s", err, agent.LogTail(2000))
	}
	secret, err := kube.CoreV1().Secrets("clusternet-system").Get(ctx, certs.DefaultServingSecret, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	base, err := parent.RESTConfig()
	if err != nil {
		return nil, err
	}
	url := func(port int) string {
		return "https://127.0.0.1:" + strconv.Itoa(port) + "/apis/proxies.clusternet.io/v1alpha1/sockets/" + agent.id + "/proxy/direct/api/v1/namespaces/default"
	}
	r := &replicaResults{}
	for _, m := range []struct {
		port     int
		p50, p99 *time.Duration
	}{{holder.Port, &r.holderP50, &r.holderP99}, {forwarder.Port, &r.forwardedP50, &r.forwardedP99}} {
		cfg := rest.CopyConfig(base)
		cfg.Host = "https://127.0.0.1:" + strconv.Itoa(m.port)
		cfg.CAFile, cfg.CAData = "", secret.Data[certs.KeyCACert]
		c, err := rest.HTTPClientFor(cfg)
		if err != nil {
			return nil, err
		}
		if *m.p50, *m.p99, err = sequential(ctx, c, url(m.port)); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func replicasSection(r *replicaResults) string {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }
	var b strings.Builder
	fmt.Fprintf(&b, "## Several hub replicas: a proxied GET through a replica that forwards to the tunnel holder\n\n")
	fmt.Fprintf(&b, "Measured %s on %s/%s, %d CPUs, Kubernetes %s (testbed), one run; two hub replicas, the cluster's tunnel in replica 0.\n\n",
		time.Now().UTC().Format("2006-01-02"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), testbed.KubeVersion())
	fmt.Fprintf(&b, "Command: `make bench` (`go run ./test/bench --only replicas`)\n\n")
	fmt.Fprintf(&b, "| small GET, sent straight to a replica (2,000 sequential) | p50 | p99 |\n|---|---|---|\n")
	fmt.Fprintf(&b, "| to the tunnel holder | %s | %s |\n", ms(r.holderP50), ms(r.holderP99))
	fmt.Fprintf(&b, "| to the other replica, which forwards it | %s | %s |\n", ms(r.forwardedP50), ms(r.forwardedP99))
	fmt.Fprintf(&b, "\nThe forwarding hop costs %s at p50 (%.2fx the holder): a pooled mutual-TLS connection between replicas, and the holder authenticating and authorizing the caller again (a SubjectAccessReview, cached).\n",
		ms(r.forwardedP50-r.holderP50), float64(r.forwardedP50)/float64(r.holderP50))
	return b.String()
}
