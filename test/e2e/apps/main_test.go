// Package apps is the end-to-end test of application distribution on the
// hub: Subscriptions scheduled onto registered children, Bases rendered into
// Descriptions with Globalizations and Localizations, bad input reported,
// lifecycle and status, across a hub restart.
package apps

import (
	"os"
	"testing"

	"github.com/clusternet/clusternet/test/e2e/e2eutil"
)

func TestMain(m *testing.M) {
	os.Exit(e2eutil.Main(m))
}
