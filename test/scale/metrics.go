package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"k8s.io/client-go/kubernetes"
	"k8s.io/component-base/metrics/testutil"
)

// apiserverSample is what the parent apiserver's /metrics says at one
// moment: requests served, and the latency histogram of the requests that
// end (not WATCH or CONNECT, which last as long as they are open).
type apiserverSample struct {
	requests float64
	// buckets are cumulative counts by upper bound, in seconds.
	buckets map[float64]float64
	count   float64
	sum     float64
	// seats are the seats executing in API Priority and Fairness outside
	// its exempt level: a tunnel the parent does not count as long-running
	// holds one for as long as it lives (docs/scale.md).
	seats float64
	// byKind are requests served by "VERB resource[/subresource]".
	byKind map[string]float64
	// throttled are the requests answered 429 (API Priority and Fairness
	// queues full, or a client's own rate), by priority level where APF
	// rejected them.
	throttled float64
	rejected  map[string]float64
}

func scrapeParent(ctx context.Context, kube kubernetes.Interface) (apiserverSample, error) {
	raw, err := kube.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return apiserverSample{}, fmt.Errorf("the parent's /metrics: %w", err)
	}
	families, err := testutil.TextToMetricFamilies(bytes.NewReader(raw))
	if err != nil {
		return apiserverSample{}, fmt.Errorf("the parent's /metrics: %w", err)
	}
	s := apiserverSample{buckets: map[float64]float64{}, byKind: map[string]float64{}}
	if f, ok := families["apiserver_request_total"]; ok {
		for _, m := range f.GetMetric() {
			v := m.GetCounter().GetValue()
			s.requests += v
			s.byKind[requestKind(m)] += v
			if label(m, "code") == "429" {
				s.throttled += v
			}
		}
	}
	s.rejected = map[string]float64{}
	if f, ok := families["apiserver_flowcontrol_rejected_requests_total"]; ok {
		for _, m := range f.GetMetric() {
			s.rejected[label(m, "priority_level")] += m.GetCounter().GetValue()
		}
	}
	if f, ok := families["apiserver_flowcontrol_current_executing_seats"]; ok {
		for _, m := range f.GetMetric() {
			if label(m, "priority_level") != "exempt" {
				s.seats += m.GetGauge().GetValue()
			}
		}
	}
	if f, ok := families["apiserver_request_duration_seconds"]; ok {
		for _, m := range f.GetMetric() {
			if v := label(m, "verb"); v == "WATCH" || v == "CONNECT" {
				continue
			}
			h := m.GetHistogram()
			s.count += float64(h.GetSampleCount())
			s.sum += h.GetSampleSum()
			for _, b := range h.GetBucket() {
				s.buckets[b.GetUpperBound()] += float64(b.GetCumulativeCount())
			}
		}
	}
	return s, nil
}

// requestKind is what a request did: "VERB resource[/subresource]".
func requestKind(m *dto.Metric) string {
	kind := label(m, "verb") + " " + label(m, "resource")
	if sub := label(m, "subresource"); sub != "" {
		kind += "/" + sub
	}
	return kind
}

func label(m *dto.Metric, name string) string {
	for _, p := range m.GetLabel() {
		if p.GetName() == name {
			return p.GetValue()
		}
	}
	return ""
}

// window is what the parent served between two samples.
type window struct {
	requests float64
	mean     time.Duration
	// p99 is the upper bound of the histogram bucket the 99th percentile
	// falls in: the histogram's resolution, not an exact figure.
	p99 time.Duration
	// byKind are the requests by requestKind.
	byKind map[string]float64
	// throttled are the requests answered 429; rejected those of them APF
	// refused, by priority level.
	throttled float64
	rejected  map[string]float64
}

func between(a, b apiserverSample) window {
	w := window{requests: b.requests - a.requests, byKind: map[string]float64{}, throttled: b.throttled - a.throttled, rejected: map[string]float64{}}
	for k, v := range b.rejected {
		if d := v - a.rejected[k]; d > 0 {
			w.rejected[k] = d
		}
	}
	for k, v := range b.byKind {
		if d := v - a.byKind[k]; d > 0 {
			w.byKind[k] = d
		}
	}
	n := b.count - a.count
	if n <= 0 {
		return w
	}
	w.mean = time.Duration((b.sum - a.sum) / n * float64(time.Second))
	bounds := make([]float64, 0, len(b.buckets))
	for ub := range b.buckets {
		bounds = append(bounds, ub)
	}
	sort.Float64s(bounds)
	for _, ub := range bounds {
		if b.buckets[ub]-a.buckets[ub] >= 0.99*n {
			if !math.IsInf(ub, 1) {
				w.p99 = time.Duration(ub * float64(time.Second))
			}
			break
		}
	}
	return w
}

// etcdSize is the size of the parent etcd's database file: what it holds,
// with the free pages compaction left (etcd does not shrink it without a
// defragmentation).
func etcdSize(clusterDir string) int64 {
	st, err := os.Stat(filepath.Join(clusterDir, "etcd", "member", "snap", "db"))
	if err != nil {
		return 0
	}
	return st.Size()
}

// loadAverage is the machine's 1, 5 and 15 minute load averages.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(data)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], ", ")
	}
	return "unknown"
}
