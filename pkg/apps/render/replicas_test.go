package render

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestReplicasAnnotation(t *testing.T) {
	rs := []ReplicaSetting{{Feed: "apps/Deployment/foo/web", Path: "/spec/replicas", Replicas: 2}}
	enc := EncodeReplicas(rs)
	if want := `[{"feed":"apps/Deployment/foo/web","path":"/spec/replicas","replicas":2}]`; enc != want {
		t.Errorf("EncodeReplicas = %s, want %s", enc, want)
	}
	got, err := DecodeReplicas(enc)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rs, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if EncodeReplicas(nil) != "" {
		t.Error("no division must encode to no annotation")
	}
	if got, err := DecodeReplicas(""); got != nil || err != nil {
		t.Errorf("DecodeReplicas(\"\") = %v, %v; want nil, nil", got, err)
	}
	if _, err := DecodeReplicas("{"); err == nil {
		t.Error("a malformed annotation must be an error")
	}
}
