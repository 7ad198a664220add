package main

// The exit-code table. Commands return errors (wrapping the sentinels below
// for the codes other than 1); main decides the status, and internal/view
// renders the error once.

import (
	"cmp"
	"context"
	"errors"
	"io"

	"imgpipe/internal/azure"
	"imgpipe/internal/emulatorenv"
	"imgpipe/internal/transfer"
	"imgpipe/internal/view"
)

// Exit statuses: one table, documented in README ("Exit codes").
const (
	exitOK               = 0
	exitFailure          = 1   // anything that went wrong, including usage errors
	exitNegative         = 2   // a negative answer: plan has changes (--detailed-exitcode), not Azure-ready, drift, cannot deploy, verify mismatch
	exitStillReplicating = 3   // the replication timeout ended the wait; Azure keeps replicating
	exitInterrupted      = 130 // Ctrl-C or SIGTERM
)

// exitNames name the statuses in the JSON error object ("failed" otherwise).
var exitNames = map[int]string{exitNegative: "negative", exitStillReplicating: "still_replicating", exitInterrupted: "interrupted"}

// errNegative marks a negative answer (exit 2): the command worked, and the
// answer is "no". Wrap it with negative().
var errNegative = errors.New("negative answer")

type negativeError struct{ err error }

func (e *negativeError) Error() string   { return e.err.Error() }
func (e *negativeError) Unwrap() []error { return []error{e.err, errNegative} }

// negative makes err a negative answer (exit 2). With nil, the command has
// already shown the answer on stdout and nothing more is printed.
func negative(err error) error {
	if err == nil {
		return view.Shown(errNegative)
	}
	return &negativeError{err}
}

// usageError is a command line imgpipe does not understand (exit 1).
type usageError struct {
	msg  string
	help string // the command whose --help to read ("" for imgpipe's own)
}

func (e *usageError) Error() string { return e.msg }

// exitCode is the table: it decides the process status from err.
func exitCode(err error, interrupted bool) int {
	switch {
	case interrupted:
		return exitInterrupted
	case err == nil:
		return exitOK
	case errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.Is(err, azure.ErrStillReplicating):
		return exitStillReplicating
	case errors.Is(err, errNegative), errors.Is(err, transfer.ErrVerify): // an upload's target differs from its source
		return exitNegative
	}
	return exitFailure
}

// renderError shows err once (view.Error): as text on stderr, or under
// --output json as an error object on out (where the result would have been).
func renderError(stderr, out io.Writer, err error, code int) {
	if view.IsShown(err) {
		return
	}
	name, hint := cmp.Or(exitNames[code], "failed"), ""
	var ue *usageError
	if errors.As(err, &ue) && code == exitFailure {
		name, hint = "usage", "see "+cmp.Or(ue.help, "imgpipe")+" --help"
	}
	view.Error(stderr, out, jsonOutput(), globals.debug, err, view.Describe(err, name, code, hint, emulatorenv.Hint))
}
