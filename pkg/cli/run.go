package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/component-base/logs"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
)

// ExitError ends the plugin with Code after Message (already formatted, as
// kubectl formats its errors; empty for none) is printed.
type ExitError struct {
	Message string
	Code    int
}

func (e *ExitError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Message
}

// Run executes a command built by NewClusternetCommand and returns the
// process exit code: kubectl's own codes for kubectl's commands (diff exits
// 1 when it found differences), 1 for other errors. Errors are printed to
// the command's error stream as kubectl prints them.
func Run(cmd *cobra.Command) int {
	defer logs.FlushLogs()
	cmd.SetGlobalNormalizationFunc(cliflag.WordSepNormalizeFunc)
	cmd.SilenceErrors = true
	logs.AddFlags(cmd.PersistentFlags())
	pre, preE := cmd.PersistentPreRun, cmd.PersistentPreRunE
	cmd.PersistentPreRun = nil
	cmd.PersistentPreRunE = func(c *cobra.Command, args []string) error {
		logs.InitLogs()
		if pre != nil {
			pre(c, args)
		}
		if preE != nil {
			return preE(c, args)
		}
		return nil
	}
	return exitCode(cmd.Execute(), cmd.ErrOrStderr())
}

// exitCode prints err the way kubectl does and returns the exit code.
func exitCode(err error, errOut io.Writer) int {
	if err == nil {
		return 0
	}
	var exit *ExitError
	if !errors.As(err, &exit) {
		exit = formatError(err)
	}
	if exit.Message != "" {
		msg := exit.Message
		if !strings.HasSuffix(msg, "\n") {
			msg += "\n"
		}
		_, _ = fmt.Fprint(errOut, msg)
	}
	return exit.Code
}

// formatError formats err with kubectl's rules ("Error from server
// (NotFound): ..." for API errors, "error: ..." otherwise).
func formatError(err error) (exit *ExitError) {
	defer func() {
		if r := recover(); r != nil {
			e, ok := r.(*ExitError)
			if !ok {
				panic(r)
			}
			exit = e
		}
	}()
	withFatalHandler(func() { cmdutil.CheckErr(err) })
	return &ExitError{Message: "error: " + err.Error(), Code: 1}
}

// withFatalHandler runs f with kubectl's fatal error handler turned into a
// panic with an *ExitError, so nothing below main exits the process.
func withFatalHandler(f func()) {
	cmdutil.BehaviorOnFatal(func(msg string, code int) { panic(&ExitError{Message: msg, Code: code}) })
	defer cmdutil.DefaultBehaviorOnFatal()
	f()
}

// runE turns the Run of a kubectl command (which reports errors through
// cmdutil.CheckErr and exits) into a RunE that returns an *ExitError.
func runE(run func(*cobra.Command, []string)) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) (err error) {
		// kubectl's commands validate inside Run and print their own usage hints.
		cmd.SilenceUsage = true
		defer func() {
			if r := recover(); r != nil {
				e, ok := r.(*ExitError)
				if !ok {
					panic(r)
				}
				err = e
			}
		}()
		withFatalHandler(func() { run(cmd, args) })
		return nil
	}
}

// convertRuns gives every command under cmd that has a Run a RunE instead.
func convertRuns(cmd *cobra.Command) {
	if cmd.Run != nil && cmd.RunE == nil {
		cmd.RunE = runE(cmd.Run)
		cmd.Run = nil
	}
	for _, c := range cmd.Commands() {
		convertRuns(c)
	}
}
