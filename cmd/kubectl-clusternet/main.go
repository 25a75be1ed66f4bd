// Command kubectl-clusternet is the Clusternet kubectl plugin: `kubectl clusternet ...`.
package main

import (
	"os"

	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/component-base/cli"

	clusternetcli "github.com/clusternet/clusternet/pkg/cli"
)

func main() {
	cmd := clusternetcli.NewCmdClusternet(genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	os.Exit(cli.Run(cmd))
}
