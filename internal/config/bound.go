package config

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/hashicorp/hcl/v2"
)

// Bounds on a pipeline file, checked before the HCL parser sees it. The
// parser is recursive: a file nested 100,000 levels deep (200 KB) overflows
// its stack and kills the process, and 20,000 levels take hundreds of MB.
// Real pipeline files are a few KB and nest a handful of levels (a block, a
// map inside it, a list of objects), so both bounds are far above any real
// file and far below what hurts.
const (
	// MaxFileSize is the largest pipeline file accepted, in bytes.
	MaxFileSize = 1 << 20
	// MaxDepth is the deepest nesting accepted: blocks, braces, brackets,
	// parentheses and template interpolations (${...}, %{...}) together.
	MaxDepth = 64
)

// readBounded reads the pipeline file at path, refusing one larger than
// MaxFileSize without reading past that.
func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	src, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(src) > MaxFileSize {
		return nil, fmt.Errorf("%s is larger than %d bytes, the most a pipeline file may hold: is it the right file?", path, MaxFileSize)
	}
	return src, nil
}

// checkBounds refuses, with a diagnostic at the offending place, a file
// larger than MaxFileSize or nested deeper than MaxDepth. It is a small
// single-pass scanner (constant stack, memory proportional to the depth
// bound) that knows just enough HCL native syntax to count nesting: it skips
// comments, quoted strings and heredocs, and counts the template
// interpolations inside them. It does not validate anything else; the parser
// does that once the file is known to be of a size and shape it handles.
func checkBounds(src []byte, filename string) hcl.Diagnostics {
	if len(src) > MaxFileSize {
		return hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Pipeline file too large",
			Detail:   fmt.Sprintf("The file has %d bytes; a pipeline file may hold at most %d. Is it the right file?", len(src), MaxFileSize),
			Subject:  &hcl.Range{Filename: filename, Start: hcl.InitialPos, End: hcl.InitialPos},
		}}
	}
	s := boundScanner{src: src, line: 1, col: 1}
	if at, ok := s.scan(); !ok {
		return hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Pipeline file nested too deeply",
			Detail:   fmt.Sprintf("Nesting goes deeper than %d levels here (blocks, {}, [], () and ${} together); a pipeline file needs a handful. Flatten the structure.", MaxDepth),
			Subject:  &hcl.Range{Filename: filename, Start: at, End: at},
		}}
	}
	return nil
}

// Scanner states on the stack: inside code (the top level, a block body, a
// bracket or an interpolation), a quoted string, or a heredoc.
const (
	inCode = iota
	inString
	inHeredoc
)

type frame struct {
	kind   int
	interp bool   // a code frame opened by ${ or %{ (closed by "}")
	marker []byte // heredoc end marker
}

type boundScanner struct {
	src       []byte
	i         int
	line, col int
	stack     []frame // bounded by MaxDepth+1 pushes before scan fails
	depth     int
}

func (s *boundScanner) pos() hcl.Pos { return hcl.Pos{Line: s.line, Column: s.col, Byte: s.i} }

// advance moves past n bytes, keeping line and column.
func (s *boundScanner) advance(n int) {
	for ; n > 0 && s.i < len(s.src); n-- {
		if s.src[s.i] == '\n' {
			s.line, s.col = s.line+1, 1
		} else {
			s.col++
		}
		s.i++
	}
}

func (s *boundScanner) has(prefix string) bool { return bytes.HasPrefix(s.src[s.i:], []byte(prefix)) }

// push opens one nesting level; it reports false past MaxDepth.
func (s *boundScanner) push(f frame) bool {
	if f.kind == inCode {
		s.depth++
		if s.depth > MaxDepth {
			return false
		}
	}
	s.stack = append(s.stack, f)
	return true
}

func (s *boundScanner) pop() {
	if n := len(s.stack); n > 0 {
		if s.stack[n-1].kind == inCode {
			s.depth--
		}
		s.stack = s.stack[:n-1]
	}
}

func (s *boundScanner) top() frame {
	if len(s.stack) == 0 {
		return frame{kind: inCode}
	}
	return s.stack[len(s.stack)-1]
}

// scan walks the whole file; it returns the position where nesting first
// exceeds MaxDepth and false, or true.
func (s *boundScanner) scan() (hcl.Pos, bool) {
	atLineStart := true
	for s.i < len(s.src) {
		at := s.pos()
		switch t := s.top(); t.kind {
		case inString:
			switch {
			case s.has(`\`):
				s.advance(2)
			case s.has(`"`):
				s.pop()
				s.advance(1)
			case s.has("$${"), s.has("%%{"):
				s.advance(3) // escaped, literal
			case s.has("${"), s.has("%{"):
				if !s.push(frame{kind: inCode, interp: true}) {
					return at, false
				}
				s.advance(2)
			case s.has("\n"):
				s.pop() // an unterminated string: the parser will say so
				s.advance(1)
			default:
				s.advance(1)
			}
			continue
		case inHeredoc:
			if atLineStart {
				end := bytes.IndexByte(s.src[s.i:], '\n')
				if end < 0 {
					end = len(s.src) - s.i
				}
				if bytes.Equal(bytes.TrimSpace(s.src[s.i:s.i+end]), t.marker) {
					s.pop()
					s.advance(end)
					atLineStart = false
					continue
				}
			}
			atLineStart = false
			switch {
			case s.has("$${"), s.has("%%{"):
				s.advance(3)
			case s.has("${"), s.has("%{"):
				if !s.push(frame{kind: inCode, interp: true}) {
					return at, false
				}
				s.advance(2)
			default:
				atLineStart = s.src[s.i] == '\n'
				s.advance(1)
			}
			continue
		}
		// code
		switch c := s.src[s.i]; {
		case c == '#' || s.has("//"):
			for s.i < len(s.src) && s.src[s.i] != '\n' {
				s.advance(1)
			}
		case s.has("/*"):
			end := bytes.Index(s.src[s.i+2:], []byte("*/"))
			if end < 0 {
				s.advance(len(s.src) - s.i)
			} else {
				s.advance(end + 4)
			}
		case c == '"':
			s.push(frame{kind: inString})
			s.advance(1)
		case s.has("<<"):
			s.advance(2)
			if s.has("-") {
				s.advance(1)
			}
			start := s.i
			for s.i < len(s.src) && isIdentByte(s.src[s.i]) {
				s.advance(1)
			}
			if s.i > start && s.has("\n") {
				s.push(frame{kind: inHeredoc, marker: s.src[start:s.i]})
				s.advance(1)
				atLineStart = true
			}
		case c == '{' || c == '[' || c == '(':
			if !s.push(frame{kind: inCode}) {
				return at, false
			}
			s.advance(1)
		case c == '}' || c == ']' || c == ')':
			if len(s.stack) > 0 {
				s.pop() // closes a bracket, or an interpolation back into its string
			}
			s.advance(1)
		default:
			s.advance(1)
		}
	}
	return hcl.Pos{}, true
}

func isIdentByte(c byte) bool {
	return c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
