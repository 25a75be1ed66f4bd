package registration

import (
	"math"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// AnswerPoll paces an agent's reads of its own ClusterRegistrationRequest
// while it waits for the hub's answer: the first read comes soon (an idle
// hub answers in a fraction of a second), later ones back off to about one
// every 2 s, jittered so that agents installed at once do not read in step.
//
// A watch would answer sooner, but the shared bootstrap token may only get
// requests by name (deploy/hub/rbac.yaml): watching one by name needs list
// and watch, and RBAC cannot hold those to one name per holder of a shared
// token, so every holder could list every cluster's request. Polling at
// this pace is the cheaper safe choice: a thousand waiting agents read
// about 450 times a second in all, where a 200 ms cap made it 5,000, and
// those reads queue in the bootstrap token's small priority level
// (deploy/hub/flowcontrol.yaml) ahead of the requests that register.
//
// Each call returns a fresh Backoff: Step changes it. Steps never run out;
// the caller bounds the wait.
func AnswerPoll() wait.Backoff {
	return wait.Backoff{Duration: 100 * time.Millisecond, Factor: 1.5, Jitter: 0.25, Steps: math.MaxInt32, Cap: 2 * time.Second}
}
