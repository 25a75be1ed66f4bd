package metrics

import (
	"sync"
	"time"

	"k8s.io/component-base/metrics"
)

// Heartbeat is when a cluster's agent last reported.
type Heartbeat struct {
	// Cluster is the cluster id.
	Cluster string
	Last    time.Time
}

var heartbeatAge = metrics.NewDesc(metrics.BuildFQName(namespace, "lifecycle", "heartbeat_age_seconds"),
	"Seconds since the cluster's agent last reported its status (ManagedCluster status.lastObservedTime), as the hub replica running the lifecycle controller sees it.",
	[]string{"cluster"}, nil, alpha, "")

// heartbeatCollector computes each cluster's heartbeat age when scraped, so
// the age is exact at any scrape and costs nothing between scrapes.
type heartbeatCollector struct {
	metrics.BaseStableCollector

	mu     sync.Mutex
	source func() []Heartbeat
	// term tells an unset of an earlier source from one of the current.
	term uint64
	now  func() time.Time
}

var heartbeats = &heartbeatCollector{now: time.Now}

var _ metrics.StableCollector = heartbeats

func (c *heartbeatCollector) DescribeWithStability(ch chan<- *metrics.Desc) { ch <- heartbeatAge }

func (c *heartbeatCollector) CollectWithStability(ch chan<- metrics.Metric) {
	c.mu.Lock()
	source := c.source
	c.mu.Unlock()
	if source == nil {
		return
	}
	now := c.now()
	// A series may be sent once per scrape: the newest heartbeat of a
	// cluster id wins.
	latest := map[string]time.Time{}
	for _, hb := range source() {
		if hb.Cluster == "" || hb.Last.IsZero() {
			continue
		}
		if last, ok := latest[hb.Cluster]; !ok || hb.Last.After(last) {
			latest[hb.Cluster] = hb.Last
		}
	}
	for cluster, last := range latest {
		ch <- metrics.NewLazyConstMetric(heartbeatAge, metrics.GaugeValue, max(0, now.Sub(last).Seconds()), cluster)
	}
}

// SetHeartbeats has clusternet_lifecycle_heartbeat_age_seconds report the
// heartbeats source lists, at every scrape, until unset is called (the
// lifecycle controller stops: its replica no longer leads). Clusters that
// never reported are left out.
func SetHeartbeats(source func() []Heartbeat) (unset func()) {
	heartbeats.mu.Lock()
	defer heartbeats.mu.Unlock()
	heartbeats.term++
	term := heartbeats.term
	heartbeats.source = source
	return func() {
		heartbeats.mu.Lock()
		defer heartbeats.mu.Unlock()
		if heartbeats.term == term {
			heartbeats.source = nil
		}
	}
}
