package hub

import (
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"

	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/client-go/tools/cache"
)

// informerSyncCheck names the hub's own readyz check, next to the generic
// API server's (informer-sync, of its delegated authentication's informers).
const informerSyncCheck = "clusternet-informer-sync"

// informersSynced is ready once the informers of this replica (those its
// API and its per-tunnel controllers read: ManagedClusters, registrations,
// Descriptions, ...) have delivered their first list. required are checked
// whether or not their factory has started, so the check fails until then.
// The leader's controllers have informers of their own, per term: a replica
// that does not lead is as ready as one that does.
func informersSynced(c *Context, required ...cache.InformerSynced) healthz.HealthChecker {
	return healthz.NamedCheck(informerSyncCheck, func(*http.Request) error {
		for _, synced := range required {
			if !synced() {
				return fmt.Errorf("the hub has not listed ManagedClusters and ClusterRegistrationRequests yet")
			}
		}
		// A closed channel asks for the state now, without waiting.
		now := make(chan struct{})
		close(now)
		var waiting []string
		for _, state := range []map[reflect.Type]bool{c.Informers.WaitForCacheSync(now), c.KubeInformers.WaitForCacheSync(now)} {
			for typ, synced := range state {
				if !synced {
					waiting = append(waiting, typ.String())
				}
			}
		}
		if len(waiting) > 0 {
			slices.Sort(waiting)
			return fmt.Errorf("informers not synced yet: %s", strings.Join(waiting, ", "))
		}
		return nil
	})
}
