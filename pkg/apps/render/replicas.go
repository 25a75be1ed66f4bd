package render

import "encoding/json"

// Annotations on a Base: the hub writes them, and both the hub's rendering
// and the plugin's (`kubectl clusternet render`, `diff`) read them.
const (
	// AnnotationReplicas carries the cluster's share of divided replicas,
	// per feed, as a JSON list of {feed, path, replicas}: what the Base
	// controller writes into the rendered objects.
	AnnotationReplicas = "apps.clusternet.io/replicas"
	// AnnotationSubscriptionGeneration is the generation of the Subscription
	// the Base was last written from: a change of it is "the next change of
	// the Subscription" that ApplyLater overrides wait for. A Subscription
	// edit that does not resolve never reaches the Base, so never this.
	AnnotationSubscriptionGeneration = "apps.clusternet.io/subscription-generation"
)

// EncodeReplicas is the value of AnnotationReplicas; empty for no division.
func EncodeReplicas(rs []ReplicaSetting) string {
	if len(rs) == 0 {
		return ""
	}
	b, _ := json.Marshal(rs)
	return string(b)
}

// DecodeReplicas reads a value of AnnotationReplicas.
func DecodeReplicas(s string) ([]ReplicaSetting, error) {
	if s == "" {
		return nil, nil
	}
	var rs []ReplicaSetting
	err := json.Unmarshal([]byte(s), &rs)
	return rs, err
}
