// Command kubectl-clusternet is the Clusternet kubectl plugin: `kubectl clusternet ...`.
package main

import (
	"os"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	clusternetcli "github.com/clusternet/clusternet/pkg/cli"
	_ "github.com/clusternet/clusternet/pkg/cli/englishhelp" // before kubectl's packages initialize
	"github.com/clusternet/clusternet/pkg/cli/startgc"
)

func main() {
	startgc.Restore()
	streams := genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	os.Exit(clusternetcli.Run(clusternetcli.NewClusternetCommand(clusternetcli.ClusternetOptions{Arguments: os.Args, IOStreams: streams})))
}
