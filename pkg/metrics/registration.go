package metrics

import "k8s.io/component-base/metrics"

// Registration results, the values of label result.
const (
	// RegistrationApproved: a new cluster was admitted and given its token.
	RegistrationApproved = "approved"
	// RegistrationRenewed: an admitted cluster's token was renewed.
	RegistrationRenewed = "renewed"
	// RegistrationDenied: the request was refused (a reserved namespace, a
	// claimed id, an admin's denial is not counted: the hub did not write it).
	RegistrationDenied = "denied"
	// RegistrationPending: the request waits for an admin (manual approval).
	RegistrationPending = "pending"
	// RegistrationError: answering failed and is retried.
	RegistrationError = "error"
)

var registrations = metrics.NewCounterVec(&metrics.CounterOpts{
	Namespace:      namespace,
	Subsystem:      "registration",
	Name:           "requests_total",
	Help:           "ClusterRegistrationRequests the hub answered, by result (approved, renewed, denied, pending, error).",
	StabilityLevel: alpha,
}, []string{"result"})

// Registration records one answer of the approver.
func Registration(result string) { registrations.WithLabelValues(result).Inc() }
