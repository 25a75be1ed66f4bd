package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// flagDefiners are the flag and pflag methods that define a flag, with the
// index of the argument holding its name.
var flagDefiners = map[string]int{
	"String": 0, "Bool": 0, "Int": 0, "Int64": 0, "Uint": 0, "Uint64": 0, "Float64": 0, "Duration": 0,
	"StringSlice": 0, "StringArray": 0, "Func": 0, "BoolFunc": 0,
	"StringVar": 1, "BoolVar": 1, "IntVar": 1, "Int64Var": 1, "UintVar": 1, "Uint64Var": 1, "Float64Var": 1,
	"DurationVar": 1, "StringSliceVar": 1, "StringArrayVar": 1, "TextVar": 1, "Var": 1,
}

// programFlags are the flags a Go program of the repository defines (the
// hack/ and test/ programs that `go run` and bin/ run): read from its
// source, since their flags live in main's locals and cannot be imported.
// ok is false when dir holds no Go package.
func (c *Checker) programFlags(dir string) (flags map[string]bool, ok bool) {
	if f, ok := c.programs[dir]; ok {
		return f, f != nil
	}
	entries, err := os.ReadDir(filepath.Join(c.root, filepath.FromSlash(dir)))
	if err != nil {
		c.programs[dir] = nil
		return nil, false
	}
	fset := token.NewFileSet()
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, filepath.Join(c.root, filepath.FromSlash(dir), name), nil, 0)
		if err != nil {
			continue
		}
		if flags == nil {
			flags = map[string]bool{"help": true}
		}
		ast.Inspect(file, func(n ast.Node) bool {
			call, isCall := n.(*ast.CallExpr)
			if !isCall {
				return true
			}
			sel, isSel := call.Fun.(*ast.SelectorExpr)
			if !isSel {
				return true
			}
			i, defines := flagDefiners[sel.Sel.Name]
			if !defines || len(call.Args) <= i {
				return true
			}
			if lit, isLit := call.Args[i].(*ast.BasicLit); isLit && lit.Kind == token.STRING {
				if name, err := strconv.Unquote(lit.Value); err == nil {
					flags[name] = true
				}
			}
			return true
		})
	}
	if flags == nil {
		c.programs[dir] = nil
		return nil, false
	}
	c.programs[dir] = flags
	return flags, true
}

// programDir is the repository package a command word runs: a `go run`
// package (./test/bench) or a binary that make build puts in bin/
// (bin/local-up is test/framework/cmd/local-up).
func (c *Checker) programDir(word string) string {
	word = strings.TrimPrefix(word, "./")
	if c.isDir(word) {
		return word
	}
	if !strings.HasPrefix(word, "bin/") {
		return ""
	}
	name := strings.TrimPrefix(word, "bin/")
	c.walkPaths()
	for _, p := range c.paths {
		if p == "cmd/"+name || strings.HasSuffix(p, "/cmd/"+name) {
			return p
		}
	}
	return ""
}
