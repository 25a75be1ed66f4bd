// Package throttle lets a costly action (rediscovering a cluster's API
// through its tunnel, say) run at most once per interval, however often the
// reason for it comes up.
package throttle

import (
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// Interval remembers when its action last ran. The zero value is ready and
// lets the first action through; it is safe for concurrent use.
type Interval struct {
	// Clock tells the time; nil is the real clock (tests set a fake).
	Clock clock.PassiveClock

	mu   sync.Mutex
	last time.Time
}

// Allow says whether the action may run now, that is whether it has not run
// in the last every, and if so counts it as run now.
func (i *Interval) Allow(every time.Duration) bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	now := i.now()
	if !i.last.IsZero() && now.Sub(i.last) < every {
		return false
	}
	i.last = now
	return true
}

// Mark counts the action as run now, without asking.
func (i *Interval) Mark() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.last = i.now()
}

func (i *Interval) now() time.Time {
	if i.Clock == nil {
		return time.Now()
	}
	return i.Clock.Now()
}
