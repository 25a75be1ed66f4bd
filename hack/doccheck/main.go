// Command doccheck fails when the user docs name something the repository
// does not have: a relative link or its anchor, a repository path in
// backticks, a make target, or a flag of clusternet-hub, clusternet-agent,
// kubectl clusternet or kubectl (make verify-doc-links).
//
//	go run ./hack/doccheck            # from the repository root
//	go run ./hack/doccheck -root dir
//
// It reads README.md, docs/**/*.md, charts/*/README.md and
// examples/**/README.md, and prints one line per problem: file:line, what is
// wrong and the fix. The flags are those of the commands themselves
// (hub.NewCommand, agent.NewCommand, cli.NewCmdClusternet and kubectl's own
// command tree), so renaming a flag fails here before a reader finds out;
// flags of other tools that the docs use are listed in allowlist.go.
package main

import (
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

func main() {
	// Not flag.CommandLine: the plugin's command adds the Go flags of its
	// logging, and -root must not pass for one of the plugin's flags.
	fset := flag.NewFlagSet("doccheck", flag.ExitOnError)
	root := fset.String("root", ".", "the repository root")
	_ = fset.Parse(os.Args[1:])
	findings, err := run(*root, realCommands())
	if err != nil {
		fmt.Fprintln(os.Stderr, "doccheck:", err)
		os.Exit(2)
	}
	for _, f := range findings {
		fmt.Println(f)
	}
	if len(findings) > 0 {
		fmt.Fprintf(os.Stderr, "doccheck: %d problems in the docs (see above)\n", len(findings))
		os.Exit(1)
	}
}

func run(root string, cmds Commands) ([]Finding, error) {
	c, err := NewChecker(root, cmds)
	if err != nil {
		return nil, err
	}
	files, err := docFiles(root)
	if err != nil {
		return nil, err
	}
	var all []Finding
	for _, f := range files {
		found, err := c.CheckFile(f)
		if err != nil {
			return nil, err
		}
		all = append(all, found...)
	}
	return all, nil
}

// docFiles are the user docs, relative to root with forward slashes, sorted.
func docFiles(root string) ([]string, error) {
	var files []string
	if _, err := os.Stat(filepath.Join(root, "README.md")); err == nil {
		files = append(files, "README.md")
	}
	charts, err := filepath.Glob(filepath.Join(root, "charts", "*", "README.md"))
	if err != nil {
		return nil, err
	}
	for _, f := range charts {
		rel, err := filepath.Rel(root, f)
		if err != nil {
			return nil, err
		}
		files = append(files, filepath.ToSlash(rel))
	}
	walk := func(dir string, want func(name string) bool) error {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == "testdata" {
				return filepath.SkipDir
			}
			if !d.IsDir() && want(d.Name()) {
				rel, err := filepath.Rel(root, p)
				if err != nil {
					return err
				}
				files = append(files, filepath.ToSlash(rel))
			}
			return nil
		})
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	if err := walk("docs", func(name string) bool { return filepath.Ext(name) == ".md" }); err != nil {
		return nil, err
	}
	if err := walk("examples", func(name string) bool { return name == "README.md" }); err != nil {
		return nil, err
	}
	slices.Sort(files)
	return slices.Compact(files), nil
}
