// Package flow is the end-to-end test of the seed's application
// distribution, as a user runs it: `kubectl clusternet apply -f
// examples/applications/` against a parent with registered children (one
// pushed to by the hub, one pulling, one Dual with AppPusher off), then the
// seed's `kubectl clusternet get desc -A` and `kubectl describe desc`, the
// objects running in every child, overrides, prune, drift, a hub killed
// mid-rollout, and deletion.
package flow

import (
	"os"
	"testing"

	"github.com/clusternet/clusternet/test/e2e/e2eutil"
)

func TestMain(m *testing.M) {
	os.Exit(e2eutil.Main(m))
}
