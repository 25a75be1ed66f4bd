// Command testbed starts and stops the real-Kubernetes testbed from a shell:
//
//	testbed up [--dir D] [--children N]   start a parent and N children, print their kubeconfigs
//	testbed down [--dir D]                stop what "up" (and "run") started in D
//	testbed run [--dir D] --name N -- BINARY ARGS...
//	                                      run a program next to the clusters; "down" stops it
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/clusternet/clusternet/test/testbed"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "testbed:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: testbed up|down [--dir D] [--children N]")
	}
	fs := flag.NewFlagSet("testbed "+args[0], flag.ContinueOnError)
	dir := fs.String("dir", "_output/testbed", "folder for the clusters' files and state")
	children := fs.Int("children", 2, "number of child clusters")
	name := fs.String("name", "", "with run: the program's name, for its log file (DIR/NAME.log)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	switch args[0] {
	case "up":
		if *children < 0 {
			return fmt.Errorf("--children %d: must be 0 or more", *children)
		}
		if _, err := testbed.Load(*dir); err == nil {
			return fmt.Errorf("a testbed is already recorded in %s: run 'testbed down --dir %s' first", *dir, *dir)
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		start := time.Now()
		tb, err := testbed.Up(ctx, testbed.Options{Dir: *dir, Children: *children})
		if err != nil {
			return err
		}
		fmt.Printf("testbed up in %s (Kubernetes %s)\n", time.Since(start).Round(100*time.Millisecond), testbed.KubeVersion())
		for _, c := range tb.Clusters() {
			fmt.Printf("  %-8s %s  KUBECONFIG=%s\n", c.Name, c.URL, c.Kubeconfig)
		}
		return nil
	case "run":
		if *name == "" || fs.NArg() == 0 {
			return errors.New("usage: testbed run [--dir D] --name N -- BINARY ARGS")
		}
		tb, err := testbed.Load(*dir)
		if err != nil {
			return err
		}
		p, err := tb.Run(*name, fs.Arg(0), fs.Args()[1:]...)
		if err != nil {
			return err
		}
		fmt.Printf("%s running (pid %d), log %s\n", *name, p.Pid, p.Log)
		return nil
	case "down":
		tb, err := testbed.Load(*dir)
		if err != nil {
			return err
		}
		tb.Down()
		fmt.Println("testbed down")
		return nil
	default:
		return fmt.Errorf("unknown command %q: use up, run or down", args[0])
	}
}
