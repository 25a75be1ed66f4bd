// Package version reports what build is running. The Makefile stamps the
// variables with -ldflags -X; a plain `go build` reports a dev version.
package version

import (
	"fmt"
	"runtime"
)

// Stamped at build time by the Makefile's LDFLAGS.
var (
	gitVersion = "v0.0.0-dev"
	gitCommit  = "unknown"
	buildDate  = "1970-01-01T00:00:00Z"
)

// Info describes a build, in the shape of Kubernetes' version.Info.
type Info struct {
	GitVersion string `json:"gitVersion"`
	GitCommit  string `json:"gitCommit"`
	BuildDate  string `json:"buildDate"`
	GoVersion  string `json:"goVersion"`
	Compiler   string `json:"compiler"`
	Platform   string `json:"platform"`
}

// Get returns this build's version information.
func Get() Info {
	return Info{
		GitVersion: gitVersion,
		GitCommit:  gitCommit,
		BuildDate:  buildDate,
		GoVersion:  runtime.Version(),
		Compiler:   runtime.Compiler,
		Platform:   fmt.Sprintf("%s/%s", runtime.GOOS, runtime.GOARCH),
	}
}

// String is the git version, as components print it in their logs.
func (i Info) String() string { return i.GitVersion }
