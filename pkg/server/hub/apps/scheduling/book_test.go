package scheduling

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/sets"
)

// on is an Entry placing n one-CPU replicas on each of clusters.
func on(priority int32, movable bool, n int64, clusters ...string) Entry {
	e := Entry{Priority: priority, Movable: movable, Preempts: movable, On: map[string]Usage{}}
	for _, c := range clusters {
		e.On[c] = cpuUsage(n)
	}
	return e
}

// bookOf records entries (by key) in a new book.
func bookOf(entries map[string]Entry) *Book {
	b := NewBook()
	for k, e := range entries {
		b.Record(k, e)
	}
	return b
}

// TestBookRoom: on a cluster, a Subscription's others are what every
// other Subscription placed; the preemptible part, only when it may
// preempt, is what movable ones of strictly lower priority placed: not
// those of equal or higher priority, not Static or Replication ones (they
// never move), not its own.
func TestBookRoom(t *testing.T) {
	book := bookOf(map[string]Entry{
		"ns/low":    on(0, true, 2, "c"),
		"ns/mid":    on(5, true, 1, "c"),
		"ns/peer":   on(5, true, 1, "c"),
		"ns/static": on(0, false, 1, "c"),
		"ns/high":   on(10, true, 1, "c", "d"),
	})
	tests := []struct {
		name                     string
		key                      string
		priority                 int32
		preempts                 bool
		wantOthers, wantPreempts Usage
	}{
		{"the highest takes every movable lower one's room", "ns/high", 10, true, cpuUsage(5), cpuUsage(4)},
		{"PreemptNever: nothing preemptible", "ns/high", 10, false, cpuUsage(5), nil},
		{"equal priority never preempts", "ns/mid", 5, true, cpuUsage(5), cpuUsage(2)},
		{"the lowest preempts nothing", "ns/low", 0, true, cpuUsage(4), nil},
		{"raised above its recorded priority: its own room is not the others'", "ns/low", 7, true, cpuUsage(4), cpuUsage(2)},
		{"a Subscription not in the book yet", "ns/new", 6, true, cpuUsage(6), cpuUsage(4)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			others, pre := book.Room(tc.key, "c", tc.priority, tc.preempts)
			if diff := cmp.Diff(tc.wantOthers, others, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("others (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantPreempts, pre, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("preemptible (-want +got):\n%s", diff)
			}
		})
	}
	if others, pre := book.Room("ns/high", "empty", 10, true); others != nil || pre != nil {
		t.Errorf("a cluster nothing is placed on: others %v, preemptible %v", others, pre)
	}
}

// TestBookRecord: recording a placement says where the room of the others
// shrank (grew) and where it grew (shrank); a new priority counts for both
// everywhere; forgetting a Subscription frees all it took, and leaves
// nothing of it behind.
func TestBookRecord(t *testing.T) {
	tests := []struct {
		name                 string
		before, after        Entry
		wantGrew, wantShrank []string
	}{
		{"a new Subscription", Entry{}, on(0, true, 1, "a", "b"), []string{"a", "b"}, nil},
		{"moved from a to c", on(0, true, 1, "a", "b"), on(0, true, 1, "b", "c"), []string{"c"}, []string{"a"}},
		{"scaled up on b", on(0, true, 1, "a", "b"), func() Entry { e := on(0, true, 1, "a"); e.On["b"] = cpuUsage(2); return e }(), []string{"b"}, nil},
		{"unchanged", on(0, true, 1, "a"), on(0, true, 1, "a"), nil, nil},
		{"priority raised", on(0, true, 1, "a"), on(9, true, 1, "a"), []string{"a"}, []string{"a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBook()
			if tc.before.On != nil {
				b.Record("ns/s", tc.before)
			}
			grew, shrank := b.Record("ns/s", tc.after)
			if diff := cmp.Diff(tc.wantGrew, grew, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("grew (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantShrank, shrank, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("shrank (-want +got):\n%s", diff)
			}
			b.Record("ns/other", on(0, true, 1, "a"))
			if freed := b.Forget("ns/gone"); freed != nil {
				t.Errorf("forgetting what the book does not hold frees %v", freed)
			}
			freed := b.Forget("ns/s")
			if diff := cmp.Diff(sets.List(sets.KeySet(tc.after.On)), freed, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("forget (-want +got):\n%s", diff)
			}
			if _, ok := b.Entry("ns/s"); ok {
				t.Error("the forgotten Subscription is still in the book")
			}
			if others, _ := b.Room("ns/x", "b", 0, false); others != nil {
				t.Errorf("cluster b after forgetting the only Subscription on it: others %v", others)
			}
			if others, _ := b.Room("ns/x", "a", 0, false); !cmp.Equal(cpuUsage(1), others) {
				t.Errorf("cluster a after forgetting: others %v, want only ns/other's", others)
			}
		})
	}
}

// TestBookVictims: the movable Subscriptions of lower priority whose room
// a preemption takes, the lowest first, as many as cover what it needs.
func TestBookVictims(t *testing.T) {
	book := bookOf(map[string]Entry{
		"ns/a":      on(1, true, 2, "c"),
		"ns/b":      on(0, true, 2, "c"),
		"ns/c":      on(0, true, 2, "c"),
		"ns/static": on(0, false, 4, "c"),
		"ns/peer":   on(5, true, 4, "c"),
	})
	tests := []struct {
		name string
		need Usage
		want []string
	}{
		{"one lowest covers it", cpuUsage(1), []string{"ns/b"}},
		{"the lowest by key, then the next priority", Usage{corev1.ResourceCPU: 5000}, []string{"ns/b", "ns/c", "ns/a"}},
		{"more than they hold: all of them", Usage{corev1.ResourceCPU: 50000}, []string{"ns/b", "ns/c", "ns/a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, book.Victims("c", "ns/high", 5, tc.need)); diff != "" {
				t.Errorf("victims (-want +got):\n%s", diff)
			}
		})
	}
}

// TestBookOver: a movable Subscription is over on a cluster when what it
// placed there no longer fits by the book or by status.available; only
// then may its next round move replicas off the cluster.
func TestBookOver(t *testing.T) {
	c := withAlloc(cluster("c"), "4", "64Gi", "110")
	tests := []struct {
		name    string
		entries map[string]Entry
		c       Cluster
		want    bool
	}{
		{"fits", map[string]Entry{"ns/s": on(0, true, 2, "c"), "ns/t": on(0, true, 2, "c")}, c, false},
		{"the others took its room", map[string]Entry{"ns/s": on(0, true, 2, "c"), "ns/t": on(9, true, 3, "c")}, c, true},
		{"its room taken by a lower one it may preempt: not over", map[string]Entry{"ns/s": on(9, true, 2, "c"), "ns/t": on(0, true, 3, "c")}, c, false},
		{"Static never moves, so is never over", map[string]Entry{"ns/s": on(0, false, 2, "c"), "ns/t": on(9, true, 3, "c")}, c, false},
		{"available below zero by the book's count", map[string]Entry{"ns/s": on(0, true, 2, "c")},
			func() Cluster {
				c := c
				c.Available = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("-1")}
				return c
			}(), true},
		{"placed nowhere here", map[string]Entry{"ns/s": on(0, true, 2, "d")}, c, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := bookOf(tc.entries).Over("ns/s", tc.c); got != tc.want {
				t.Errorf("Over: %v, want %v", got, tc.want)
			}
		})
	}
}
