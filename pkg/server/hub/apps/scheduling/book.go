package scheduling

import (
	"cmp"
	"maps"
	"slices"
	"sync"

	"k8s.io/apimachinery/pkg/util/sets"
)

// Book is the hub's record of what every Subscription placed on every
// cluster: its decided shares times what one replica requests, running
// or not. Dynamic dividing reads from it the room the other Subscriptions
// took (Room), so that one scheduled after another does not count the
// same room again before any pod exists. It keeps, per cluster, the sum
// of every placement and the sum by priority of those that move, so that
// what a round reads of one cluster costs the same however many
// Subscriptions there are. Safe for concurrent use.
type Book struct {
	mu       sync.RWMutex
	entries  map[string]*Entry
	clusters map[string]*ledger
}

// Entry is what one Subscription placed, and how the others may treat it.
type Entry struct {
	Priority int32
	// Movable says the hub divides it dynamically: its replicas move
	// when a Subscription of higher priority takes their room, so only its
	// placements may be preempted. Static dividing and Replication place
	// where weights and selectors say, whatever the room: they take room
	// but never give it up.
	Movable bool
	// Preempts says it may take the room of movable Subscriptions of
	// lower priority.
	Preempts bool
	// Short says its last round placed replicas beyond what their cluster
	// holds (Result.Short): room freed elsewhere may take them.
	Short bool
	// On[cluster key] is what it placed there.
	On map[string]Usage
}

// ledger sums the placements on one cluster.
type ledger struct {
	total Usage
	// movable sums the placements of movable Subscriptions by priority.
	movable map[int32]Usage
	keys    sets.Set[string]

	// prios are the priorities of movable in order, and below[i] sums
	// those below prios[i] (below[len(prios)] all of them), so that a
	// round reads the preemptible room of a cluster in one look. Worked
	// out again when a round first reads them after a change (stale):
	// filling the book at start, or a round changing many clusters, then
	// costs one sum per cluster, not one per placement.
	mu    sync.Mutex
	stale bool
	prios []int32
	below []Usage
}

// lower is what movable Subscriptions of priority below p placed. Safe
// under the book's read lock.
func (l *ledger) lower(p int32) Usage {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stale || l.below == nil {
		l.prios = slices.Sorted(maps.Keys(l.movable))
		l.below = make([]Usage, len(l.prios)+1)
		l.below[0] = Usage{}
		for i, q := range l.prios {
			l.below[i+1] = l.below[i].Clone()
			l.below[i+1].Add(l.movable[q])
		}
		l.stale = false
	}
	i, _ := slices.BinarySearch(l.prios, p)
	return l.below[i]
}

// NewBook is an empty book.
func NewBook() *Book {
	return &Book{entries: map[string]*Entry{}, clusters: map[string]*ledger{}}
}

// Record replaces what the Subscription of key placed with e. grew are the
// clusters where the room the others have shrank (e takes more there, or
// counts for more: a priority raised), shrank those where it grew; a
// cluster may be in both. Only the clusters where it changed are written:
// most rounds change little.
func (b *Book) Record(key string, e Entry) (grew, shrank []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.entries[key]
	b.entries[key] = &e
	grew, shrank = changes(old, &e)
	if old == nil || old.Priority != e.Priority || old.Movable != e.Movable {
		if old != nil {
			for ck, u := range old.On {
				b.take(key, old, ck, u)
			}
		}
		for ck, u := range e.On {
			b.put(key, &e, ck, u)
		}
		return grew, shrank
	}
	changed := slices.Concat(grew, shrank)
	slices.Sort(changed)
	for _, ck := range slices.Compact(changed) { // a cluster may be in both
		if u, ok := old.On[ck]; ok {
			b.take(key, old, ck, u)
		}
		if u, ok := e.On[ck]; ok {
			b.put(key, &e, ck, u)
		}
	}
	return grew, shrank
}

// Forget drops the Subscription of key (deleted): shrank are the clusters
// where it had placed replicas.
func (b *Book) Forget(key string) (shrank []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.entries[key]
	if old == nil {
		return nil
	}
	for ck, u := range old.On {
		b.take(key, old, ck, u)
	}
	delete(b.entries, key)
	_, shrank = changes(old, nil)
	return shrank
}

// put adds what e placed on cluster ck, u, to its ledger.
func (b *Book) put(key string, e *Entry, ck string, u Usage) {
	l := b.clusters[ck]
	if l == nil {
		l = &ledger{total: Usage{}, movable: map[int32]Usage{}, keys: sets.New[string]()}
		b.clusters[ck] = l
	}
	l.total.Add(u)
	l.keys.Insert(key)
	if e.Movable {
		if l.movable[e.Priority] == nil {
			l.movable[e.Priority] = Usage{}
		}
		l.movable[e.Priority].Add(u)
		l.stale = true
	}
}

// take removes what e placed on cluster ck, u, from its ledger.
func (b *Book) take(key string, e *Entry, ck string, u Usage) {
	l := b.clusters[ck]
	if l == nil {
		return
	}
	l.total.Sub(u)
	l.keys.Delete(key)
	if m := l.movable[e.Priority]; e.Movable && m != nil {
		m.Sub(u)
		if len(m) == 0 {
			delete(l.movable, e.Priority)
		}
		l.stale = true
	}
	if l.keys.Len() == 0 {
		delete(b.clusters, ck)
	}
}

// changes are the clusters where going from old to cur (either may be
// nil) takes more room from the others (grew) or less (shrank), in order.
// A changed priority or kind counts for both on every cluster: it changes
// who may preempt whom there.
func changes(old, cur *Entry) (grew, shrank []string) {
	var was, is map[string]Usage
	if old != nil {
		was = old.On
	}
	if cur != nil {
		is = cur.On
	}
	recast := old != nil && cur != nil && (old.Priority != cur.Priority || old.Movable != cur.Movable)
	compare := func(ck string, from, to Usage) {
		more, less := recast, recast
		for name, n := range to {
			more = more || n > from[name]
			less = less || n < from[name]
		}
		for name, n := range from {
			if _, ok := to[name]; !ok {
				less = less || n > 0
				more = more || n < 0
			}
		}
		if more {
			grew = append(grew, ck)
		}
		if less {
			shrank = append(shrank, ck)
		}
	}
	for ck, u := range is {
		compare(ck, was[ck], u)
	}
	for ck, u := range was {
		if _, ok := is[ck]; !ok {
			compare(ck, u, nil)
		}
	}
	slices.Sort(grew)
	slices.Sort(shrank)
	return grew, shrank
}

// Room is, on cluster, what the Subscriptions other than key placed
// (others) and, when the one of key may preempt at priority, the part of
// it movable Subscriptions of strictly lower priority placed
// (preemptible): Cluster.Others and Cluster.Preemptible. Nil when nothing
// is placed there.
func (b *Book) Room(key, cluster string, priority int32, preempts bool) (others, preemptible Usage) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.room(key, cluster, priority, preempts)
}

func (b *Book) room(key, cluster string, priority int32, preempts bool) (others, preemptible Usage) {
	l := b.clusters[cluster]
	if l == nil {
		return nil, nil
	}
	var own Usage
	e := b.entries[key]
	if e != nil {
		own = e.On[cluster]
	}
	others = make(Usage, len(l.total))
	for name, n := range l.total {
		others[name] = addSat(n, -own[name])
	}
	if !preempts {
		return others, nil
	}
	lower := l.lower(priority)
	if len(lower) == 0 {
		return others, nil
	}
	preemptible = lower.Clone()
	if e != nil && e.Movable && e.Priority < priority {
		preemptible.Sub(own) // its own room is not the others'
	}
	return others, preemptible
}

// Over says whether the Subscription of key is movable and what it
// placed on c may no longer fit there: some resource it takes has less
// than nothing left for it (room.go), by the book and, when c reports it,
// by status.available. Only then may its next round move replicas off c.
func (b *Book) Over(key string, c Cluster) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	e := b.entries[key]
	if e == nil || !e.Movable || len(e.On[c.Key]) == 0 {
		return false
	}
	own := e.On[c.Key]
	c.Others, c.Preemptible = b.room(key, c.Key, e.Priority, e.Preempts)
	rs := resources{names: sets.List(sets.KeySet(own))}
	rm := &rooms(1, len(rs.names))[0]
	for r, name := range rs.names {
		rm.own[r] = own[name]
	}
	rm.measure(&c, rs)
	for r := range rs.names {
		if rm.known[r] && rm.own[r] > 0 && rm.free(r) < 0 {
			return true
		}
	}
	return false
}

// On lists the Subscriptions that placed replicas on cluster.
func (b *Book) On(cluster string) []string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if l := b.clusters[cluster]; l != nil {
		return sets.List(l.keys)
	}
	return nil
}

// Short lists the Subscriptions whose last round left replicas beyond
// their cluster's capacity.
func (b *Book) Short() []string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	var out []string
	for k, e := range b.entries {
		if e.Short {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// Entry is what the book holds for key.
func (b *Book) Entry(key string) (Entry, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	e := b.entries[key]
	if e == nil {
		return Entry{}, false
	}
	return *e, true
}

// Victims are the movable Subscriptions of lower priority than priority
// on cluster whose room the Subscription of key takes when it needs need
// there (Result.Preempts): the lowest priority first (then by key), as
// many as it takes to cover need.
func (b *Book) Victims(cluster, key string, priority int32, need Usage) []string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	l := b.clusters[cluster]
	if l == nil {
		return nil
	}
	var lower []string
	for k := range l.keys {
		if e := b.entries[k]; k != key && e.Movable && e.Priority < priority {
			lower = append(lower, k)
		}
	}
	slices.SortFunc(lower, func(x, y string) int {
		return cmp.Or(cmp.Compare(b.entries[x].Priority, b.entries[y].Priority), cmp.Compare(x, y))
	})
	left := need.Clone()
	var out []string
	for _, k := range lower {
		if !left.positive() {
			break
		}
		out = append(out, k)
		left.Sub(b.entries[k].On[cluster])
	}
	return out
}
