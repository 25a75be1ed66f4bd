// Package cli is the end-to-end test of the kubectl plugin: the real kubectl
// from the testbed runs `kubectl clusternet ...` with the built plugin on its
// PATH, against a parent with the hub and two registered children.
package cli

import (
	"os"
	"testing"

	"github.com/clusternet/clusternet/test/e2e/e2eutil"
)

func TestMain(m *testing.M) {
	os.Exit(e2eutil.Main(m))
}
