package view

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// Ask puts a yes/no question on out and reads the answer from in, which
// must be a terminal: without one, --yes is required.
func Ask(in io.Reader, out io.Writer, question string) (bool, error) {
	if f, ok := in.(*os.File); !ok || !term.IsTerminal(int(f.Fd())) {
		return false, errors.New("not a terminal: pass --yes to proceed without asking")
	}
	fmt.Fprintf(out, "%s [y/N] ", question)
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes", nil
}

// Approve is yes when given (--yes, or nothing to approve), else Ask's
// answer.
func Approve(in io.Reader, out io.Writer, given bool, question string) (bool, error) {
	if given {
		return true, nil
	}
	return Ask(in, out, question)
}
