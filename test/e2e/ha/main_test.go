// Package ha is the end-to-end test of several hub replicas: three hubs
// behind a round-robin TCP balancer that the APIServices' Service points
// at, serving the certificate they manage themselves, two registered
// children; proxy requests through any replica reach any cluster
// (forwarded to the replica holding its tunnel), the replica holding the
// tunnels and the controllers' lease is killed, and everything works again
// within 5 s with no Description applied twice.
package ha

import (
	"os"
	"testing"

	"github.com/clusternet/clusternet/test/e2e/e2eutil"
)

func TestMain(m *testing.M) {
	os.Exit(e2eutil.Main(m))
}
