// Command tool is a program whose flags the checker reads from its source.
package main

import "flag"

func main() {
	var verbose bool
	flag.BoolVar(&verbose, "verbose", false, "say more")
	out := flag.String("out", "", "where to write")
	flag.Parse()
	_ = out
}
