// Package cli holds what the immdata and immtrain commands share: the global flags
// (--workers, --quiet, --log-format), logger construction, the version string and the
// exit-code convention. Subcommands live in cmd/immdata and cmd/immtrain, one file each.
package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// Version is set at link time with -ldflags "-X github.com/immkit/immkit/internal/cli.Version=v1.2.3";
// when empty the module version from the build info is used.
var Version = ""

// Global holds the flags every command shares.
type Global struct {
	Workers   int    // worker goroutines per stage; 0 means GOMAXPROCS
	Quiet     bool   // no progress display and no info logs
	LogFormat string // text or json
	Stdout    io.Writer
	Stderr    io.Writer
}

// AddFlags registers the shared persistent flags on root.
func (g *Global) AddFlags(root *cobra.Command) {
	pf := root.PersistentFlags()
	pf.IntVar(&g.Workers, "workers", 0, "worker goroutines per stage (0 = number of CPUs)")
	pf.BoolVarP(&g.Quiet, "quiet", "q", false, "no progress display, warnings and errors only")
	pf.StringVar(&g.LogFormat, "log-format", "text", "log line format: text or json")
}

// NumWorkers returns the effective worker count.
func (g *Global) NumWorkers() int {
	if g.Workers > 0 {
		return g.Workers
	}
	return runtime.GOMAXPROCS(0)
}

// Logger builds the slog logger the flags ask for, writing to Stderr.
func (g *Global) Logger() (*slog.Logger, error) {
	level := slog.LevelInfo
	if g.Quiet {
		level = slog.LevelWarn
	}
	opts := &slog.HandlerOptions{Level: level}
	w := g.Stderr
	if w == nil {
		w = os.Stderr
	}
	switch g.LogFormat {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: want text or json, got %q", g.LogFormat)
}

// Validate checks the shared flags; call it from PersistentPreRunE.
func (g *Global) Validate() error {
	if g.Workers < 0 {
		return Usagef("--workers: must be >= 0, got %d", g.Workers)
	}
	if _, err := g.Logger(); err != nil {
		return &UsageError{Err: err}
	}
	return nil
}

// NewRoot builds a program's root command: the shared flags and their validation, the
// output writers of g, `version`, and the subcommands (one constructor per subcommand file).
func NewRoot(g *Global, root *cobra.Command, subcommands []func(*Global) *cobra.Command) *cobra.Command {
	root.PersistentPreRunE = func(*cobra.Command, []string) error { return g.Validate() }
	if g.Stdout != nil {
		root.SetOut(g.Stdout)
	}
	if g.Stderr != nil {
		root.SetErr(g.Stderr)
	}
	g.AddFlags(root)
	root.AddCommand(VersionCommand(root.Name()))
	for _, sub := range subcommands {
		root.AddCommand(sub(g))
	}
	return root
}

// Run builds a root command with newRoot, runs it on args with captured output and
// returns stdout, stderr and the exit code Execute gives: the way command tests run a
// program without a process.
func Run(newRoot func(*Global) *cobra.Command, args ...string) (stdout, stderr string, code int) {
	var out, errb bytes.Buffer
	root := newRoot(&Global{Stdout: &out, Stderr: &errb})
	root.SetArgs(args)
	code = Execute(root)
	return out.String(), errb.String(), code
}

// VersionString is the version line printed by `version`.
func VersionString(program string) string {
	v := Version
	if v == "" {
		v = "(devel)"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
			v = bi.Main.Version
		}
	}
	return fmt.Sprintf("%s %s %s/%s %s", program, v, runtime.GOOS, runtime.GOARCH, runtime.Version())
}

// VersionCommand returns the `version` subcommand.
func VersionCommand(program string) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version and build information",
		Example: "  " + program + " version",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), VersionString(program))
			return err
		},
	}
}

// UsageError marks an error caused by unusable arguments (exit code 2).
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usagef returns a *UsageError with a formatted message.
func Usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// Execute runs root with a context cancelled on SIGINT/SIGTERM, prints a one-line error and
// returns the process exit code: 0 success, 2 usage error, 1 anything else, 130 interrupted.
func Execute(root *cobra.Command) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root.SilenceUsage = true
	root.SilenceErrors = true
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &UsageError{Err: err} })
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintf(root.ErrOrStderr(), "%s: %v\n", root.Name(), err)
	var ue *UsageError
	switch {
	case errors.As(err, &ue), strings.HasPrefix(err.Error(), "unknown command"):
		return 2
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return 130
	}
	return 1
}
