package view

// Errors as the user reads them, rendered once at the root: text on stderr,
// or under --output json an error object where the result would have been.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"imgpipe/internal/azure"
)

// Failure is an error as the user reads it (under -o json: {"error": ...}).
type Failure struct {
	Code     string `json:"code"`
	Message  string `json:"message"`
	Hint     string `json:"hint,omitempty"`
	ExitCode int    `json:"exit_code"`
}

// Describe turns err into a Failure: code names the exit status ("failed",
// "usage", "negative", "still_replicating", "interrupted"), hint says what to
// do when the caller knows; Azure's errors are made readable
// (azure.Diagnose), and local reports a local emulator's state ("" when it
// is not the cause).
func Describe(err error, code string, exit int, hint string, local func(error) string) Failure {
	o := Failure{Code: code, Message: err.Error(), Hint: hint, ExitCode: exit}
	if code == "interrupted" {
		o.Message = "interrupted"
		if !errors.Is(err, context.Canceled) {
			o.Message = "interrupted: " + err.Error()
		}
		o.Hint = "run the same command again: imgpipe resumes where it stopped"
		return o
	}
	if d := azure.Diagnose(err); d != nil {
		o.Code = d.Code
		msg := d.Text()
		if d.Hint != "" {
			// the hint is its own field; the text keeps the rest
			msg = strings.TrimSuffix(msg, "\n  What to do: "+d.Hint)
		}
		o.Message, o.Hint = msg, d.Hint
	}
	if local != nil {
		if h := local(err); h != "" {
			o.Code, o.Hint = "emulator", h
		}
	}
	return o
}

// Error shows f: as text on stderr (with err as it came first when debug),
// or as JSON on out.
func Error(stderr, out io.Writer, asJSON, debug bool, err error, f Failure) {
	if debug {
		fmt.Fprintf(stderr, "imgpipe: debug: %+v\n", err)
	}
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		_ = enc.Encode(struct {
			Error Failure `json:"error"`
		}{f})
		return
	}
	fmt.Fprintln(stderr, "imgpipe:", f.Message)
	if f.Hint != "" {
		fmt.Fprintln(stderr, "  What to do:", f.Hint)
	}
}

// Joined renders each of several joined errors readably (azure.Explain);
// another error is returned as it is.
func Joined(err error) error {
	var j interface{ Unwrap() []error }
	if !errors.As(err, &j) {
		return err
	}
	var parts []string
	for _, e := range j.Unwrap() {
		parts = append(parts, azure.Explain(e))
	}
	return &explainedMany{err: err, text: strings.Join(parts, "\n")}
}

type explainedMany struct {
	err  error
	text string
}

func (e *explainedMany) Error() string { return e.text }
func (e *explainedMany) Unwrap() error { return e.err }
