package registration

import (
	"testing"
	"time"
)

// A waiting agent reads its request soon at first, then about every 2 s,
// never in step with another agent, and a few dozen times a minute at most.
func TestAnswerPoll(t *testing.T) {
	const agents = 50
	var first []time.Duration
	for range agents {
		poll := AnswerPoll()
		var waited time.Duration
		reads := 0
		var waits []time.Duration
		for waited < time.Minute {
			d := poll.Step()
			waits = append(waits, d)
			waited += d
			reads++
		}
		if waits[0] > 150*time.Millisecond {
			t.Fatalf("first wait %s: an idle hub answers in milliseconds, want at most 150ms", waits[0])
		}
		for i, d := range waits {
			if d > 2500*time.Millisecond {
				t.Fatalf("wait %d is %s: want at most 2.5s (2s cap and a quarter of jitter)", i, d)
			}
		}
		if last := waits[len(waits)-1]; last < 2*time.Second {
			t.Fatalf("after a minute the agent waits %s between reads, want at least 2s", last)
		}
		if reads > 40 {
			t.Fatalf("%d reads of the request in a minute, want at most 40", reads)
		}
		first = append(first, waits[len(waits)-1])
	}
	distinct := map[time.Duration]bool{}
	for _, d := range first {
		distinct[d] = true
	}
	if len(distinct) < agents/2 {
		t.Errorf("%d agents' waits take %d distinct values: the reads are not jittered", agents, len(distinct))
	}
}
