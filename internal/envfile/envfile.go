// Package envfile parses a Laravel .env file the way Laravel's phpdotenv
// reads it, keeping what diagnostics need: line numbers, quoting, `export`,
// and every definition of a key (duplicates included).
package envfile

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
)

// Entry is one KEY=VALUE definition.
type Entry struct {
	Key    string
	Value  string // unquoted, escapes processed, not interpolated
	Raw    string // the definition's first line as written
	Line   int    // 1-based
	Quote  byte   // 0, '\'' or '"'
	Export bool
}

// File is a parsed .env file.
type File struct {
	Path    string
	Entries []Entry // in file order, duplicates kept
}

// ParseFile reads and parses path.
func ParseFile(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Parse(path, f)
}

// Parse parses a .env file; path is used in error messages
// ("path:LINE: message").
func Parse(path string, r io.Reader) (*File, error) {
	p := &parser{path: path, file: &File{Path: path}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		p.lines = append(p.lines, strings.TrimSuffix(sc.Text(), "\r"))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for p.i < len(p.lines) {
		if err := p.entry(); err != nil {
			return nil, err
		}
	}
	return p.file, nil
}

type parser struct {
	path  string
	file  *File
	lines []string
	i     int // index of the next line
}

func (p *parser) errorf(line int, format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", p.path, line, fmt.Sprintf(format, args...))
}

func (p *parser) entry() error {
	lineNo := p.i + 1
	raw := p.lines[p.i]
	p.i++
	s := strings.TrimSpace(raw)
	if s == "" || s[0] == '#' {
		return nil
	}
	e := Entry{Raw: raw, Line: lineNo}
	if rest, ok := strings.CutPrefix(s, "export "); ok {
		e.Export, s = true, strings.TrimSpace(rest)
	}
	key, value, ok := strings.Cut(s, "=")
	if !ok {
		return p.errorf(lineNo, "expected KEY=VALUE, got %q", truncate(s))
	}
	e.Key = strings.TrimSpace(key)
	if !validKey(e.Key) {
		return p.errorf(lineNo, "invalid variable name %q: use letters, digits and underscores, not starting with a digit", truncate(e.Key))
	}
	value = strings.TrimLeft(value, " \t")
	var err error
	switch {
	case strings.HasPrefix(value, `"`):
		e.Quote = '"'
		e.Value, err = p.quoted(value[1:], lineNo, '"')
	case strings.HasPrefix(value, `'`):
		e.Quote = '\''
		e.Value, err = p.quoted(value[1:], lineNo, '\'')
	default:
		e.Value, err = unquoted(value)
		if err != nil {
			err = p.errorf(lineNo, "%s: %v", e.Key, err)
		}
	}
	if err != nil {
		return err
	}
	p.file.Entries = append(p.file.Entries, e)
	return nil
}

// quoted reads a quoted value that may continue over further lines.
func (p *parser) quoted(s string, lineNo int, q byte) (string, error) {
	var b strings.Builder
	for {
		for i := 0; i < len(s); i++ {
			c := s[i]
			if q == '"' && c == '\\' && i+1 < len(s) {
				i++
				switch s[i] {
				case 'n':
					b.WriteByte('\n')
				case 'r':
					b.WriteByte('\r')
				case 't':
					b.WriteByte('\t')
				case '"', '\\', '$':
					b.WriteByte(s[i])
				default:
					b.WriteByte('\\')
					b.WriteByte(s[i])
				}
				continue
			}
			if c == q {
				rest := strings.TrimSpace(s[i+1:])
				if rest != "" && rest[0] != '#' {
					return "", p.errorf(lineNo, "unexpected %q after the closing quote", truncate(rest))
				}
				return b.String(), nil
			}
			b.WriteByte(c)
		}
		if p.i >= len(p.lines) {
			return "", p.errorf(lineNo, "unterminated %c-quoted value", q)
		}
		b.WriteByte('\n')
		s = p.lines[p.i]
		p.i++
	}
}

// unquoted handles a bare value: an inline comment starts at " #".
func unquoted(s string) (string, error) {
	if i := strings.Index(s, " #"); i >= 0 {
		s = s[:i]
	} else if i := strings.Index(s, "\t#"); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSpace(s)
	if strings.ContainsAny(s, " \t") {
		return "", fmt.Errorf("unquoted value %q contains whitespace; Laravel refuses it: put it in double quotes", truncate(s))
	}
	return s, nil
}

func validKey(k string) bool {
	if k == "" || (k[0] >= '0' && k[0] <= '9') {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c == '_' || c == '.' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// Lookup returns the definition that takes effect: the last one.
func (f *File) Lookup(key string) (Entry, bool) {
	for i := len(f.Entries) - 1; i >= 0; i-- {
		if f.Entries[i].Key == key {
			return f.Entries[i], true
		}
	}
	return Entry{}, false
}

// Duplicates returns the keys defined more than once, each with all its
// definitions in file order.
func (f *File) Duplicates() map[string][]Entry {
	all := map[string][]Entry{}
	for _, e := range f.Entries {
		all[e.Key] = append(all[e.Key], e)
	}
	out := map[string][]Entry{}
	for k, es := range all {
		if len(es) > 1 {
			out[k] = es
		}
	}
	return out
}

// Resolve returns every key's effective value with ${VAR} interpolated
// (not in single-quoted values). A variable is looked up in environ first
// (the process environment wins in Laravel), then in earlier keys of the
// file; an unknown one becomes empty.
func (f *File) Resolve(environ func(string) (string, bool)) map[string]string {
	out := map[string]string{}
	for _, e := range f.Entries {
		v := e.Value
		if e.Quote != '\'' {
			v = interpolate(v, func(name string) string {
				if environ != nil {
					if ev, ok := environ(name); ok {
						return ev
					}
				}
				return out[name]
			})
		}
		out[e.Key] = v
	}
	return out
}

// References returns the variable names a value interpolates.
func References(value string) []string {
	var names []string
	interpolate(value, func(name string) string { names = append(names, name); return "" })
	return names
}

func interpolate(s string, lookup func(string) string) string {
	if !strings.Contains(s, "${") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		name, def, hasDef := strings.Cut(s[i+2:i+j], ":-")
		v := lookup(name)
		if v == "" && hasDef {
			v = def
		}
		b.WriteString(v)
		s = s[i+j+1:]
	}
}

func truncate(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}
