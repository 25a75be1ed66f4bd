package override

import (
	"cmp"
	"time"
)

// DefaultPriority is an override's priority when it sets none (the CRD's default).
const DefaultPriority int32 = 500

// Key places an override in the order overrides apply in.
type Key struct {
	// Priority: lower applies first, so a higher priority wins.
	Priority int32
	// Created: among equal priorities, older applies first, so the newest wins.
	Created time.Time
	// Name breaks the remaining ties, so the order never depends on listing order.
	Name string
}

// Priority is p, or DefaultPriority when unset.
func Priority(p *int32) int32 {
	if p == nil {
		return DefaultPriority
	}
	return *p
}

// Compare orders keys the way overrides apply: -1 when a applies before b.
func Compare(a, b Key) int {
	if c := cmp.Compare(a.Priority, b.Priority); c != 0 {
		return c
	}
	if c := a.Created.Compare(b.Created); c != 0 {
		return c
	}
	return cmp.Compare(a.Name, b.Name)
}
