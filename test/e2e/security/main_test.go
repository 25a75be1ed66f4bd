// Package security plays each party of docs/security.md's threat model as an
// attacker, with exactly the credentials that party holds, against real
// control planes: every attempt must be refused, and the refusal must name
// the rule.
package security

import (
	"os"
	"testing"

	"github.com/clusternet/clusternet/test/e2e/e2eutil"
)

func TestMain(m *testing.M) {
	os.Exit(e2eutil.Main(m))
}
