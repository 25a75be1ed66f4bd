package startgc

import (
	"runtime/debug"
	"testing"
)

func TestPercent(t *testing.T) {
	for gogc, want := range map[string]int{"": 100, "off": -1, "OFF": -1, "50": 50, " 200 ": 200, "bogus": 100} {
		if got := Percent(gogc); got != want {
			t.Errorf("Percent(%q) = %d, want %d", gogc, got, want)
		}
	}
}

func TestInitTurnsTheCollectorOffAndRestoreOn(t *testing.T) {
	// This package's init ran before the test: the collector is off.
	if got := debug.SetGCPercent(-1); got != -1 {
		t.Fatalf("GC percent after init = %d, want -1 (off)", got)
	}
	// Leave the collector as init left it, for the next run of this test
	// in the same process (go test -count).
	t.Cleanup(func() { debug.SetGCPercent(-1) })
	t.Setenv("GOGC", "")
	Restore()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GC percent after Restore = %d, want 100", got)
	}
}
