package main

// The exit-code table and the one place errors are shown to the user.
// Commands return errors (wrapping the sentinels below for the codes other
// than 1); main decides the status and renders the error once.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"imgpipe/internal/azure"
)

// Exit statuses: one table, documented in README ("Exit codes").
const (
	exitOK               = 0
	exitFailure          = 1   // anything that went wrong, including usage errors
	exitNegative         = 2   // a negative answer: plan has changes (--detailed-exitcode), not Azure-ready, drift, cannot deploy, verify mismatch
	exitStillReplicating = 3   // the replication timeout ended the wait; Azure keeps replicating
	exitInterrupted      = 130 // Ctrl-C or SIGTERM
)

// errNegative marks a negative answer (exit 2): the command worked, and the
// answer is "no". Wrap it with negative().
var errNegative = errors.New("negative answer")

// negativeError is a negative answer with its explanation.
type negativeError struct{ err error }

func (e *negativeError) Error() string   { return e.err.Error() }
func (e *negativeError) Unwrap() []error { return []error{e.err, errNegative} }

// negative makes err a negative answer (exit 2). With nil, the command has
// already shown the answer on stdout and nothing more is printed.
func negative(err error) error {
	if err == nil {
		return shown(errNegative)
	}
	return &negativeError{err}
}

// shownError is an outcome the command has already shown in full (its
// result on stdout): the root sets the exit status and prints nothing.
type shownError struct{ err error }

func (e *shownError) Error() string { return e.err.Error() }
func (e *shownError) Unwrap() error { return e.err }

func shown(err error) error {
	if err == nil {
		return nil
	}
	return &shownError{err}
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
	case errors.Is(err, errNegative):
		return exitNegative
	}
	return exitFailure
}

// errorObject is a failure under --output json.
type errorObject struct {
	Code     string `json:"code"`
	Message  string `json:"message"`
	Hint     string `json:"hint,omitempty"`
	ExitCode int    `json:"exit_code"`
}

// describe turns err into what the user reads: a code, a message (with
// Azure's nested errors made readable) and what to do.
func describe(err error, code int) errorObject {
	o := errorObject{Code: "failed", Message: err.Error(), ExitCode: code}
	var ue *usageError
	switch {
	case code == exitInterrupted:
		o.Code, o.Message = "interrupted", "interrupted"
		if !errors.Is(err, context.Canceled) {
			o.Message = "interrupted: " + err.Error()
		}
		o.Hint = "run the same command again: imgpipe resumes where it stopped"
	case code == exitStillReplicating:
		o.Code = "still_replicating"
	case code == exitNegative:
		o.Code = "negative"
	case errors.As(err, &ue):
		o.Code = "usage"
		o.Hint = "see imgpipe --help"
		if ue.help != "" {
			o.Hint = "see " + ue.help + " --help"
		}
	}
	if d := azure.Diagnose(err); d != nil && code != exitInterrupted {
		o.Code = d.Code
		msg := d.Text()
		if d.Hint != "" {
			// the hint is its own field; the text keeps the rest
			msg = strings.TrimSuffix(msg, "\n  What to do: "+d.Hint)
		}
		o.Message, o.Hint = msg, d.Hint
	}
	if h := emulatorHint(err); h != "" && code != exitInterrupted {
		o.Code, o.Hint = "emulator", h
	}
	return o
}

// renderError shows err once: as text on stderr, or under --output json as
// an error object on stdout (where the result would have been).
func renderError(stderr, out io.Writer, err error, code int) {
	var se *shownError
	if errors.As(err, &se) {
		return
	}
	o := describe(err, code)
	if globals.debug {
		fmt.Fprintf(stderr, "imgpipe: debug: %+v\n", err)
	}
	if jsonOutput() {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		_ = enc.Encode(struct {
			Error errorObject `json:"error"`
		}{o})
		return
	}
	fmt.Fprintln(stderr, "imgpipe:", o.Message)
	if o.Hint != "" {
		fmt.Fprintln(stderr, "  What to do:", o.Hint)
	}
}
