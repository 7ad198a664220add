package server

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"time"

	"imgpipe/internal/agent"
	"imgpipe/internal/catalog"
)

// The agent channel. An agent enrols once with the fleet token (POST
// /api/enroll) and receives a credential bound to its host name; the
// catalog keeps only the credential's SHA-256. Reports carry the
// credential, and the server stores a report only for the host the
// credential was issued to, so one machine cannot write another's record.
//
// A request's body is read in full, under a deadline (BodyTimeout) and a
// size limit, before it takes one of the MaxConcurrentReports intake
// slots: a client that sends slowly ties up only its own connection.

// MaxBodyReaders bounds the request bodies being read at once (each at
// most agent.MaxReportBytes), so slow senders cannot make the server hold
// unbounded memory.
const MaxBodyReaders = 1024

// DefaultBodyTimeout is how long a client has to send a report's body.
const DefaultBodyTimeout = 10 * time.Second

// credentialDigest is how a credential is stored and looked up.
func credentialDigest(cred string) string {
	sum := sha256.Sum256([]byte(cred))
	return hex.EncodeToString(sum[:])
}

func newCredential() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return agent.CredentialPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

func bearer(r *http.Request) (string, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return tok, ok && tok != ""
}

// readBody reads a JSON request body under the body deadline and a size
// limit. On failure it has answered the request and returns ok false.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		s.reject(w, RejectMediaType, http.StatusUnsupportedMediaType, "send Content-Type: application/json")
		return nil, false
	}
	if r.ContentLength > limit {
		s.reject(w, RejectTooLarge, http.StatusRequestEntityTooLarge, "body larger than %d bytes", limit)
		return nil, false
	}
	select {
	case s.readers <- struct{}{}:
		defer func() { <-s.readers }()
	default:
		s.reject(w, RejectBusy, http.StatusServiceUnavailable, "too many requests being received; retry later")
		return nil, false
	}
	rc := http.NewResponseController(w)
	// not every ResponseWriter supports deadlines (httptest's recorder);
	// the http.Server's ReadTimeout bounds those
	_ = rc.SetReadDeadline(time.Now().Add(s.cfg.BodyTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	_ = rc.SetReadDeadline(time.Time{})
	if err != nil {
		var mb *http.MaxBytesError
		var ne net.Error
		switch {
		case errors.As(err, &mb):
			s.reject(w, RejectTooLarge, http.StatusRequestEntityTooLarge, "body larger than %d bytes", limit)
		case errors.As(err, &ne) && ne.Timeout():
			w.Header().Set("Connection", "close")
			s.reject(w, RejectSlowBody, http.StatusRequestTimeout, "the body did not arrive within %s", s.cfg.BodyTimeout)
		default:
			s.reject(w, RejectBadJSON, http.StatusBadRequest, "read the body: %s", clipErr(err))
		}
		return nil, false
	}
	return body, true
}

// apiEnroll issues a host credential for the fleet token.
func (s *Server) apiEnroll(w http.ResponseWriter, r *http.Request) {
	if s.cfg.AgentToken == "" {
		s.reject(w, RejectDisabled, http.StatusServiceUnavailable, "agent enrolment is disabled: start serve with --agent-token-file")
		return
	}
	if !s.bearerOK(r) {
		s.reject(w, RejectUnauthorized, http.StatusUnauthorized, "enrolment needs the fleet token as bearer token")
		return
	}
	body, ok := s.readBody(w, r, agent.MaxEnrollBytes)
	if !ok {
		return
	}
	var req agent.EnrollRequest
	if err := decodeStrict(body, &req); err != nil {
		s.reject(w, RejectBadJSON, http.StatusBadRequest, "enrolment is not valid JSON: %s", clipErr(err))
		return
	}
	if !agent.ValidHostName(req.Host) {
		s.reject(w, RejectInvalid, http.StatusBadRequest, "host name %q: use letters, digits, '.', '-' or '_'", clip(req.Host, 64))
		return
	}
	cred, err := newCredential()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "no randomness for a credential")
		return
	}
	if err := s.cfg.Catalog.EnrollHost(r.Context(), req.Host, credentialDigest(cred)); err != nil {
		if errors.Is(err, catalog.ErrConflict) {
			s.metrics.enrolments.WithLabelValues("refused").Inc()
			writeError(w, http.StatusConflict, "%v", err)
			return
		}
		s.catalogError(w, err)
		return
	}
	s.metrics.enrolments.WithLabelValues("enrolled").Inc()
	writeJSON(w, http.StatusCreated, agent.EnrollResponse{Host: req.Host, Credential: cred})
}

// reportCredential checks the form of a report's credential (the
// catalog checks whose it is, with its batch): the credential, or ok false
// after answering.
func (s *Server) reportCredential(w http.ResponseWriter, r *http.Request) (string, bool) {
	tok, ok := bearer(r)
	if !ok {
		s.reject(w, RejectUnauthorized, http.StatusUnauthorized, "missing bearer token: enrol with the fleet token at %s, then send the host credential", agent.EnrollPath)
		return "", false
	}
	if s.bearerOK(r) {
		s.reject(w, RejectUnauthorized, http.StatusUnauthorized, "the fleet token only enrols: POST %s, then report with the host credential", agent.EnrollPath)
		return "", false
	}
	if !strings.HasPrefix(tok, agent.CredentialPrefix) || len(tok) > 128 {
		s.reject(w, RejectUnauthorized, http.StatusUnauthorized, "wrong bearer token")
		return "", false
	}
	return tok, true
}

func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

func clip(s string, n int) string {
	if len(s) > n {
		s = s[:n] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}
