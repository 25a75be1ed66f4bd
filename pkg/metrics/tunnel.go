package metrics

import (
	"sync"

	"k8s.io/component-base/metrics"
)

const tunnelSubsystem = "tunnel"

var (
	tunnelUp = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace:      namespace,
		Subsystem:      tunnelSubsystem,
		Name:           "up",
		Help:           "Whether the cluster's tunnel is up (1) or down (0): on an agent, its own tunnel to the hub; on a hub replica, the tunnel it holds for the cluster.",
		StabilityLevel: alpha,
	}, []string{"cluster"})
	tunnelReconnects = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      namespace,
		Subsystem:      tunnelSubsystem,
		Name:           "reconnects_total",
		Help:           "Times the cluster's tunnel came up again after its first time since the process started (on an agent, or on the hub replica it reached).",
		StabilityLevel: alpha,
	}, []string{"cluster"})

	// tunnelsSeen are the clusters whose tunnel came up before, in this process.
	tunnelsSeen   = map[string]bool{}
	tunnelsSeenMu sync.Mutex
)

// TunnelChanged records that cluster's tunnel came up or went down. Its
// signature fits tunnel.Registry.Watch (the hub) as well as the agent's own
// tunnel loop.
func TunnelChanged(cluster string, up bool) {
	if !up {
		tunnelUp.WithLabelValues(cluster).Set(0)
		return
	}
	tunnelUp.WithLabelValues(cluster).Set(1)
	tunnelsSeenMu.Lock()
	again := tunnelsSeen[cluster]
	tunnelsSeen[cluster] = true
	tunnelsSeenMu.Unlock()
	reconnects := tunnelReconnects.WithLabelValues(cluster) // the series exists, at 0, from the first time
	if again {
		reconnects.Inc()
	}
}
