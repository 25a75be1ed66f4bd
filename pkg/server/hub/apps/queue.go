package apps

import (
	"container/heap"

	"k8s.io/client-go/util/workqueue"
)

// byPriority orders the Subscriptions waiting in the subscriptions loop:
// the highest spec.priority first, ties first come, first served, so that
// when several wait to be scheduled the most important takes the room
// first (upstream Clusternet's scheduling queue, and kube-scheduler's,
// order the same way).
//
// It is the innermost queue of the loop's workqueue (controller.Ordered),
// which keeps the rest of its semantics: a key waits at most once (a key
// added again while it waits is Touched, and keeps its turn among equals),
// a key being synced is not handed out again until it is Done (then it is
// Pushed anew if it was added meanwhile), and rate-limited retries and
// AddAfter reach it through the delaying queue when they are due. The
// workqueue calls it under its own lock.
type byPriority struct {
	// priority is a key's priority now (read from the lister: an edit of
	// spec.priority reaches a waiting key when it is Touched by the
	// edit's event).
	priority func(key string) int32
	items    queued
	at       map[string]*queuedKey
	seq      uint64
}

var _ workqueue.Queue[string] = &byPriority{}

type queuedKey struct {
	key      string
	priority int32
	seq      uint64
	index    int
}

func newByPriority(priority func(key string) int32) *byPriority {
	return &byPriority{priority: priority, at: map[string]*queuedKey{}}
}

func (q *byPriority) Touch(key string) {
	if k := q.at[key]; k != nil {
		if p := q.priority(key); p != k.priority {
			k.priority = p
			heap.Fix(&q.items, k.index)
		}
	}
}

func (q *byPriority) Push(key string) {
	q.seq++
	k := &queuedKey{key: key, priority: q.priority(key), seq: q.seq}
	q.at[key] = k
	heap.Push(&q.items, k)
}

func (q *byPriority) Len() int { return len(q.items) }

func (q *byPriority) Pop() string {
	k := heap.Pop(&q.items).(*queuedKey)
	delete(q.at, k.key)
	return k.key
}

// queued is a heap of waiting keys, the next to hand out first.
type queued []*queuedKey

func (h queued) Len() int { return len(h) }

func (h queued) Less(i, j int) bool {
	if h[i].priority != h[j].priority {
		return h[i].priority > h[j].priority
	}
	return h[i].seq < h[j].seq
}

func (h queued) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}

func (h *queued) Push(x any) {
	k := x.(*queuedKey)
	k.index = len(*h)
	*h = append(*h, k)
}

func (h *queued) Pop() any {
	old := *h
	k := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return k
}
