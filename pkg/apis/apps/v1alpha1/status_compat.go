package v1alpha1

import (
	"bytes"
	"encoding/json"

	utiljson "k8s.io/apimachinery/pkg/util/json"
)

// UnmarshalJSON reads a SubscriptionStatus, including one an earlier
// clusternet-hub stored, where status.specHash was the hex string (now
// specHashHex) and status.replicas the replicas per cluster (now
// replicasByCluster). Without it, one such stored object fails the hub's
// whole Subscription List (its informer never syncs: nothing is distributed)
// and its webhook refuses every update of it, the removal of its finalizer
// included, until its status is written again. Read here, the old values
// land in today's fields and the hub's next status write stores the new
// shapes.
func (s *SubscriptionStatus) UnmarshalJSON(b []byte) error {
	// plain has SubscriptionStatus's fields but not this method; the two
	// raw fields, shallower, take the JSON names both shapes share.
	type plain SubscriptionStatus
	*s = SubscriptionStatus{}
	aux := struct {
		*plain
		SpecHash json.RawMessage `json:"specHash,omitempty"`
		Replicas json.RawMessage `json:"replicas,omitempty"`
	}{plain: (*plain)(s)}
	if err := utiljson.Unmarshal(b, &aux); err != nil {
		return err
	}
	if err := s.readSpecHash(aux.SpecHash); err != nil {
		return err
	}
	return s.readReplicas(aux.Replicas)
}

func (s *SubscriptionStatus) readSpecHash(raw []byte) error {
	switch {
	case len(raw) == 0 || bytes.Equal(raw, []byte("null")):
		return nil
	case raw[0] == '"':
		var hex string
		if err := utiljson.Unmarshal(raw, &hex); err != nil {
			return err
		}
		if s.SpecHash == "" {
			s.SpecHash = hex
		}
		return nil
	}
	return utiljson.Unmarshal(raw, &s.SpecHashValue)
}

func (s *SubscriptionStatus) readReplicas(raw []byte) error {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	err := utiljson.Unmarshal(raw, &s.BindingReplicas)
	if err == nil {
		return nil
	}
	s.BindingReplicas = nil
	var byCluster map[string]map[string]int32
	if utiljson.Unmarshal(raw, &byCluster) != nil {
		return err // neither shape: upstream's is the one to name
	}
	if len(s.Replicas) == 0 {
		s.Replicas = byCluster
	}
	return nil
}
