// Package envfile parses a Laravel .env file the way Laravel's phpdotenv
// (vlucas/phpdotenv v5) reads it, and keeps what diagnostics need: the line
// of every definition, its quoting and `export` prefix, and every definition
// of a key, duplicates included.
//
// The grammar, as phpdotenv implements it:
//
//	# a comment line
//	KEY=value            unquoted: ends at whitespace; '#' starts a comment
//	export KEY=value     "export" is ignored
//	KEY = value          whitespace around '=' is ignored
//	KEY=                 an empty value
//	KEY='literal ${X}'   single quotes: no escapes, no interpolation
//	KEY="a\n\"b\" ${X}"  double quotes: \n \r \t \f \v \" \\ \$ escapes,
//	                     ${X} interpolation, may continue over lines
//	KEY=${X}/path        unquoted values interpolate too
//
// Two deliberate differences: a line without '=' is an error (phpdotenv
// reads it as "unset KEY"), and an unterminated multi-line value is an
// error (phpdotenv silently drops it and every line after it).
//
// A File is not modified after Parse and may be read from any goroutine.
package envfile

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// Entry is one KEY=VALUE definition.
type Entry struct {
	Key    string
	Value  string // quotes removed, escapes processed, not interpolated
	Raw    string // the definition's first line as written
	Line   int    // 1-based line where the definition starts
	Quote  byte   // 0 (unquoted), '\'' or '"'
	Export bool   // written as "export KEY=…"

	// refs are the byte offsets in Value of each '$' that may start a
	// ${NAME} reference; an escaped "\$" and single-quoted text are absent.
	refs []int
}

// File is a parsed .env file.
type File struct {
	Path    string
	Entries []Entry // in file order, duplicates kept
}

// SyntaxError is a line Laravel would refuse to load. Its message reads
// "path:LINE: message".
type SyntaxError struct {
	Path string
	Line int
	Msg  string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, e.Msg) }

// ParseFile reads and parses the file at path.
func ParseFile(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Parse(path, f)
}

// Parse parses a .env file read from r; path names it in the File and in
// errors. The first syntax error stops parsing, as it stops Laravel.
func Parse(path string, r io.Reader) (*File, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	p := newParser(path, string(b))
	f := &File{Path: path}
	for p.next < len(p.lines) {
		e, ok, err := p.entry()
		if err != nil {
			return nil, err
		}
		if ok {
			f.Entries = append(f.Entries, e)
		}
	}
	return f, nil
}

// normalize ends every line with \n (phpdotenv splits on \r\n, \n and \r)
// and drops the UTF-8 byte order mark that Windows editors write.
func normalize(s string) string {
	s = strings.TrimPrefix(s, "\uFEFF")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\r", "\n")
}

// phpTrim is what PHP's trim() removes; phpdotenv trims names and values
// with it.
const phpTrim = " \t\n\r\x00\x0b"

// isSpace is PHP's ctype_space.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

type parser struct {
	path  string
	text  string   // the normalized file
	lines []string // text split at \n
	ends  []int    // where each line ends in text
	next  int      // index of the next unread line
}

func newParser(path, s string) *parser {
	p := &parser{path: path, text: normalize(s)}
	p.lines = strings.Split(p.text, "\n")
	p.ends = make([]int, len(p.lines))
	end := -1
	for i, l := range p.lines {
		end += 1 + len(l)
		p.ends[i] = end
	}
	return p
}

func (p *parser) errorf(line int, format string, args ...any) error {
	return &SyntaxError{Path: p.path, Line: line, Msg: fmt.Sprintf(format, args...)}
}

// entry reads the definition starting at the next line; ok is false for a
// blank or comment line.
func (p *parser) entry() (e Entry, ok bool, err error) {
	raw := p.lines[p.next]
	p.next++
	e = Entry{Raw: raw, Line: p.next}
	s := strings.Trim(raw, phpTrim)
	if s == "" || s[0] == '#' {
		return e, false, nil
	}
	name, value, found := strings.Cut(s, "=")
	if !found {
		return e, false, p.errorf(e.Line, "expected KEY=VALUE (got %q)", clip(s))
	}
	if err := p.name(&e, strings.Trim(name, phpTrim)); err != nil {
		return e, false, err
	}
	// phpdotenv continues a value over lines only when the quote follows
	// '=' directly ("KEY=\"…" or "KEY =\"…", never "KEY= \"…"); such a
	// value keeps the blanks that end its first line.
	from := -1 // where a multi-line value starts in p.text
	if strings.HasPrefix(value, `"`) {
		_, value, _ = strings.Cut(strings.TrimLeft(raw, phpTrim), "=") // not right-trimmed
		from = p.ends[p.next-1] - len(value)
	}
	if err := p.value(&e, strings.TrimLeft(value, phpTrim), from); err != nil {
		return e, false, err
	}
	return e, true, nil
}

// name sets e.Key (and e.Export) from the text before '='.
func (p *parser) name(e *Entry, name string) error {
	if name == "" {
		return p.errorf(e.Line, "missing variable name before '='")
	}
	// phpdotenv's rule exactly: "export" plus whitespace, in a name longer
	// than 8 bytes (so "export A=1" is, in Laravel too, an invalid name).
	if len(name) > 8 && strings.HasPrefix(name, "export") && isSpace(name[6]) {
		e.Export, name = true, strings.TrimLeft(name[6:], phpTrim)
	}
	if len(name) >= 3 && (name[0] == '"' || name[0] == '\'') && name[len(name)-1] == name[0] {
		name = name[1 : len(name)-1] // 'KEY'=value and "KEY"=value are allowed
	}
	if !ValidName(name) {
		return p.errorf(e.Line, "invalid variable name %q (use letters, digits, '_' and '.')", clip(name))
	}
	e.Key = name
	return nil
}

// ValidName reports whether name is a variable name phpdotenv accepts:
// one or more of A-Z, a-z, 0-9, '_' and '.'.
func ValidName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c == '_' || c == '.' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}
