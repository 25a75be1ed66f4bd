package framework

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"k8s.io/component-base/metrics/testutil"

	"github.com/clusternet/clusternet/test/testbed"
)

// AgentProbes are an agent's health probe and metrics addresses, on free
// loopback ports: several agents run on one machine in tests.
type AgentProbes struct {
	// HealthAddr serves /healthz, /livez, /readyz; MetricsAddr /metrics.
	HealthAddr, MetricsAddr string
	releases                []func()
}

// ReserveAgentProbes reserves two free loopback ports; Release them once
// the agent has bound them, or when done.
func ReserveAgentProbes() (*AgentProbes, error) {
	p := &AgentProbes{}
	var addrs [2]string
	for i := range addrs {
		port, release, err := testbed.ReservePort()
		if err != nil {
			p.Release()
			return nil, err
		}
		p.releases = append(p.releases, release)
		addrs[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	}
	p.HealthAddr, p.MetricsAddr = addrs[0], addrs[1]
	return p, nil
}

// Args are the agent flags that serve on these addresses.
func (p *AgentProbes) Args() []string {
	return []string{"--health-probe-bind-address=" + p.HealthAddr, "--metrics-bind-address=" + p.MetricsAddr}
}

// Release gives the ports back to other testbed users.
func (p *AgentProbes) Release() {
	for _, r := range p.releases {
		r()
	}
	p.releases = nil
}

// ProbeArgs reserves an agent's probe and metrics ports and returns its
// flags for them (after AgentArgs' or a manifest's, so they win).
func ProbeArgs() (args []string, release func(), err error) {
	p, err := ReserveAgentProbes()
	if err != nil {
		return nil, nil, err
	}
	return p.Args(), p.Release, nil
}

// Get asks url with client and, when token is set, that bearer token, and
// returns the status code and body.
func Get(ctx context.Context, client *http.Client, url, token string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	return resp.StatusCode, string(body), err
}

// HubClient is an HTTP client that verifies the hub's serving certificate
// with the caBundle of its APIService in parent: what the parent itself
// trusts the hub with.
func HubClient(ctx context.Context, parent *testbed.Cluster) (*http.Client, error) {
	out, err := parent.Kubectl(ctx, "get", "apiservice", "v1alpha1.proxies.clusternet.io", "-o", "jsonpath={.spec.caBundle}").Output()
	if err != nil {
		return nil, fmt.Errorf("reading the hub's caBundle from its APIService: %w", err)
	}
	ca, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(out)))
	if err != nil {
		return nil, fmt.Errorf("the APIService's caBundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("the APIService's caBundle holds no certificate")
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}, nil
}

// Metrics are scraped metric families by name.
type Metrics map[string]*dto.MetricFamily

// Scrape reads the Prometheus metrics at url (see Get).
func Scrape(ctx context.Context, client *http.Client, url, token string) (Metrics, error) {
	code, body, err := Get(ctx, client, url, token)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %d: %s", url, code, body)
	}
	families, err := testutil.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("GET %s: not Prometheus text: %w", url, err)
	}
	return families, nil
}

// Sum adds the values of the series of name whose labels include labels
// (counters and gauges; a histogram's sample counts); found is false when
// no series matches.
func (m Metrics) Sum(name string, labels map[string]string) (sum float64, found bool) {
	family, ok := m[name]
	if !ok {
		return 0, false
	}
	for _, metric := range family.GetMetric() {
		if !testutil.LabelsMatch(metric, labels) {
			continue
		}
		found = true
		switch {
		case metric.Counter != nil:
			sum += metric.GetCounter().GetValue()
		case metric.Gauge != nil:
			sum += metric.GetGauge().GetValue()
		case metric.Histogram != nil:
			sum += float64(metric.GetHistogram().GetSampleCount())
		case metric.Untyped != nil:
			sum += metric.GetUntyped().GetValue()
		}
	}
	return sum, found
}

// ProfilerToken is a token of a new parent ServiceAccount default/<name>
// granted what an operator grants to profile the hub: get on
// /debug/pprof/* and /metrics, and nothing else.
func ProfilerToken(ctx context.Context, parent *testbed.Cluster, name string) (string, error) {
	for _, args := range [][]string{
		{"create", "serviceaccount", name, "-n", "default"},
		{"create", "clusterrole", name, "--verb=get", "--non-resource-url=/debug/pprof/*", "--non-resource-url=/metrics"},
		{"create", "clusterrolebinding", name, "--clusterrole=" + name, "--serviceaccount=default:" + name},
	} {
		if out, err := parent.Kubectl(ctx, args...).CombinedOutput(); err != nil {
			return "", fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, out)
		}
	}
	out, err := parent.Kubectl(ctx, "create", "token", name, "-n", "default", "--duration=24h").Output()
	if err != nil {
		return "", fmt.Errorf("kubectl create token %s: %w", name, err)
	}
	return strings.TrimSpace(string(out)), nil
}
