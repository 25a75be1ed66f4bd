// Package metrics defines Clusternet's Prometheus metrics, one file per
// subsystem, and the one-line calls that record them. Every metric is
// registered with component-base's legacy registry: the hub (a generic API
// server) serves it on its /metrics, the agent on --metrics-bind-address.
//
// Names are clusternet_<subsystem>_<what>_<unit>; labels take bounded
// values only: a cluster id, a verb, a status code, a result. Never a user
// name or a path.
//
// Importing this package also installs component-base's workqueue metrics
// provider, so every named client-go work queue reports workqueue_depth,
// workqueue_queue_duration_seconds and the rest, labeled by queue name.
package metrics

import (
	"net/http"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	_ "k8s.io/component-base/metrics/prometheus/workqueue" // workqueue_* metrics of every named queue
)

// namespace is every metric's first name part.
const namespace = "clusternet"

func init() {
	legacyregistry.MustRegister(
		tunnelUp, tunnelReconnects,
		proxyRequests, proxyRequestDuration,
		deploys, deployDuration,
		registrations,
	)
	legacyregistry.CustomMustRegister(heartbeats)
}

// Handler serves every registered metric in the Prometheus text format.
func Handler() http.Handler { return legacyregistry.Handler() }

// alpha is the stability of every Clusternet metric for now: names and
// labels may still change between releases.
const alpha = metrics.ALPHA
