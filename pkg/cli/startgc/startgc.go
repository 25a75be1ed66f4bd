// Package startgc keeps the garbage collector off while the plugin's
// packages initialize. kubectl's packages allocate about 6 MiB registering
// types and building tables in their init functions, which under the default
// GOGC runs collections that find nothing to free (all of it lives as long
// as the process): a good part of the start of a command that itself takes
// milliseconds. main calls Restore before doing any work.
//
// Import it for its side effect, from main. It imports only the standard
// library, and Go initializes packages in import-path order as soon as their
// imports are, so this one ("github.com/clusternet/...") runs before any
// "k8s.io/..." package.
package startgc

import (
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

func init() {
	debug.SetGCPercent(-1)
}

// Restore turns the collector back on as the environment asks: GOGC, 100
// when unset, off for "off".
func Restore() {
	debug.SetGCPercent(Percent(os.Getenv("GOGC")))
}

// Percent reads a GOGC value as the runtime does.
func Percent(gogc string) int {
	switch v := strings.TrimSpace(gogc); {
	case v == "":
		return 100
	case strings.EqualFold(v, "off"):
		return -1
	default:
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
		return 100
	}
}
