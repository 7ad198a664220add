package transfer

import (
	"errors"
	"net/url"
	"regexp"
)

var (
	// a URL's query string (where SAS tokens live)
	urlQuery = regexp.MustCompile(`(?i)(\b[a-z][a-z0-9+.-]*://[^\s?"'<>]+)\?[^\s"'<>]*`)
	// key=value secrets in connection strings, headers and bare SAS tokens
	secretKV = regexp.MustCompile(`(?i)\b(sig|accountkey|sharedaccesssignature|sharedkey|signature)=[^;&\s"'<>]+`)
)

// Scrub removes SAS query strings and account keys from s.
func Scrub(s string) string {
	s = urlQuery.ReplaceAllString(s, "$1?REDACTED")
	return secretKV.ReplaceAllString(s, "$1=REDACTED")
}

// scrubbedError presents an error with its secrets removed. Unwrap still
// reaches the original for errors.Is/As; only Error() is rewritten.
type scrubbedError struct{ err error }

func (e *scrubbedError) Error() string { return Scrub(e.err.Error()) }
func (e *scrubbedError) Unwrap() error { return e.err }

// scrubErr wraps err so that printing it never shows a secret.
func scrubErr(err error) error {
	if err == nil {
		return nil
	}
	var se *scrubbedError
	if errors.As(err, &se) && se == err {
		return err
	}
	return &scrubbedError{err}
}

// stripQuery returns u without its query string and fragment.
func stripQuery(u string) (string, error) {
	p, err := url.Parse(u)
	if err != nil {
		return "", errors.New("invalid URL: " + Scrub(err.Error()))
	}
	p.RawQuery = ""
	p.ForceQuery = false
	p.Fragment = ""
	p.User = nil
	return p.String(), nil
}
