// Command cli-docs writes docs/cli: one Markdown page per command of the
// kubectl plugin, generated from the commands themselves (make docs).
//
//	go run ./hack/cli-docs docs/cli
package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/util/homedir"

	"github.com/clusternet/clusternet/pkg/cli"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: cli-docs <output dir>")
		os.Exit(2)
	}
	if err := generate(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "cli-docs:", err)
		os.Exit(1)
	}
}

func generate(dir string) error {
	// Pages are regenerated whole: files of commands that went away go too.
	old, err := filepath.Glob(filepath.Join(dir, "*.md"))
	if err != nil {
		return err
	}
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	root := cli.NewCmdClusternet(genericiooptions.IOStreams{In: os.Stdin, Out: io.Discard, ErrOut: io.Discard})
	root.DisableAutoGenTag = true
	// Defaults that depend on the machine would change the pages from one
	// machine to the next.
	home := homedir.HomeDir()
	var fix func(c *cobra.Command)
	fix = func(c *cobra.Command) {
		c.DisableAutoGenTag = true
		for _, fs := range []*pflag.FlagSet{c.Flags(), c.PersistentFlags()} {
			fs.VisitAll(func(f *pflag.Flag) {
				if home != "" && strings.Contains(f.DefValue, home) {
					f.DefValue = strings.ReplaceAll(f.DefValue, home, "$HOME")
				}
			})
		}
		for _, sub := range c.Commands() {
			fix(sub)
		}
	}
	fix(root)
	// Pages are named after how users type the commands.
	name := func(filename string) string {
		return strings.Replace(filename, "kubectl-clusternet", "kubectl_clusternet", 1)
	}
	link := func(filename string) string { return name(filename) }
	return doc.GenMarkdownTreeCustom(root, dir, func(string) string { return "" }, link)
}
