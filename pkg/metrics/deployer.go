package metrics

import (
	"time"

	"k8s.io/component-base/metrics"
)

const deployerSubsystem = "deployer"

// Deployers, the values of label deployer.
const (
	GenericDeployer = "generic"
	HelmDeployer    = "helm"
)

// Deploy results, the values of label result.
const (
	ResultSuccess = "success"
	ResultFailure = "failure"
)

var (
	deploys = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      namespace,
		Subsystem:      deployerSubsystem,
		Name:           "deploys_total",
		Help:           "Deploys of a Description (generic) or HelmRelease (helm) into a child cluster, by the hub pushing or an agent pulling, by result.",
		StabilityLevel: alpha,
	}, []string{"deployer", "result"})
	deployDuration = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Namespace:      namespace,
		Subsystem:      deployerSubsystem,
		Name:           "deploy_duration_seconds",
		Help:           "How long a deploy into a child cluster took, by deployer and result.",
		Buckets:        []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120},
		StabilityLevel: alpha,
	}, []string{"deployer", "result"})
)

// Deployed records one deploy by deployer (GenericDeployer, HelmDeployer)
// that began at start and failed with err (nil: it succeeded).
func Deployed(deployer string, start time.Time, err error) {
	result := ResultSuccess
	if err != nil {
		result = ResultFailure
	}
	deploys.WithLabelValues(deployer, result).Inc()
	deployDuration.WithLabelValues(deployer, result).Observe(time.Since(start).Seconds())
}
