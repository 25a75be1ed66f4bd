package e2eutil

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// raceOptions is GORACE for the binaries Main builds: reports go to
// race.<pid> in dir, and a process does not sleep the race runtime's
// default second before it exits. The plugin alone runs hundreds of times
// a run, and a race is written to its report when it happens, not at exit.
func raceOptions(dir string) string {
	return "log_path=" + filepath.Join(dir, "race") + " atexit_sleep_ms=50"
}

// upstreamRaces are data races between two goroutines of a library the
// binaries link, which no code of ours takes part in or can avoid: a
// report whose text holds every frame of one entry is printed, named as
// upstream's, and fails nothing. Any other report fails the package.
var upstreamRaces = []struct {
	name   string
	frames []string
}{{
	// Seen once (2026-12-07), at a hub's start: SecureServingInfo.Serve
	// starts the DynamicServingCertificateController and then still
	// writes the tls.Config it gave it (GetConfigForClient, and http2's
	// NextProtos), which the controller's worker clones when the
	// certificates changed since its first sync.
	name: "k8s.io/apiserver: SecureServingInfo.Serve writes the tls.Config that DynamicServingCertificateController.syncCerts clones",
	frames: []string{
		"crypto/tls.(*Config).Clone()",
		"k8s.io/apiserver/pkg/server/dynamiccertificates.(*DynamicServingCertificateController).syncCerts()",
		"k8s.io/apiserver/pkg/server.(*SecureServingInfo).Serve()",
	},
}}

// raceReports prints the race reports in dir and says whether any of
// them is not a known upstream race.
func raceReports(dir string) bool {
	files, _ := filepath.Glob(filepath.Join(dir, "race.*"))
	found := false
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, report := range splitRaceReports(string(b)) {
			if name := upstreamRace(report); name != "" {
				fmt.Fprintf(os.Stderr, "a data race in a library, not failing the package (%s: %s):\n%s\n", filepath.Base(f), name, report)
				continue
			}
			found = true
			fmt.Fprintf(os.Stderr, "FAIL: a data race in a Clusternet binary (%s):\n%s\n", filepath.Base(f), report)
		}
	}
	return found
}

// splitRaceReports splits a race log into its reports, each of which the
// race runtime writes between lines of "=", leaving out the count it
// writes last.
func splitRaceReports(log string) []string {
	var reports []string
	for _, part := range strings.Split(log, "==================\n") {
		if p := strings.TrimSpace(part); p != "" && !raceCount.MatchString(p) {
			reports = append(reports, part)
		}
	}
	return reports
}

var raceCount = regexp.MustCompile(`^Found \d+ data race\(s\)$`)

// upstreamRace names the upstream race report is, or is "".
func upstreamRace(report string) string {
	for _, r := range upstreamRaces {
		all := true
		for _, f := range r.frames {
			all = all && strings.Contains(report, "\n  "+f+"\n")
		}
		if all {
			return r.name
		}
	}
	return ""
}
