package envfile

import (
	"fmt"
	"strings"
)

// The states of phpdotenv's value transducer (EntryParser::processToken).
type state int

const (
	stInitial  state = iota
	stUnquoted       // a bare value
	stSingle         // inside '…'
	stDouble         // inside "…"
	stEscape         // after a backslash inside "…"
	stSpace          // after a closing quote or whitespace in a bare value
	stComment        // after '#': the rest is ignored
)

// valueScanner turns the text after '=' into a value, reading further lines
// while a multi-line double-quoted value is open.
type valueScanner struct {
	p    *parser
	e    *Entry
	v    string // the text being scanned, with any continuation lines
	from int    // where v starts in p.text when it may span lines, else -1
	line int    // the line of the byte being scanned
	b    strings.Builder
}

// value scans v, the text after '=' with leading blanks removed, into e.
// A value that may continue over lines starts at from in p.text.
func (p *parser) value(e *Entry, v string, from int) error {
	s := &valueScanner{p: p, e: e, v: v, from: from, line: e.Line}
	st := stInitial
	for i := 0; ; i++ {
		if i == len(s.v) && !s.more(st) {
			break
		}
		var err error
		if st, err = s.step(st, i); err != nil {
			return s.located(err)
		}
		if s.v[i] == '\n' {
			s.line++
		}
	}
	switch st {
	case stSingle:
		return p.errorf(e.Line, "%s: missing closing ' quote (single-quoted values cannot span lines)", e.Key)
	case stDouble, stEscape:
		return p.errorf(e.Line, "%s: missing closing \" quote", e.Key)
	}
	e.Value = s.b.String()
	return nil
}

// located reports a problem found on a later line of a double-quoted
// value at the line where the quote opens: such a value has almost always
// lost its closing quote, and the line that fails is merely the next one
// holding a '"' or a '\' — in another variable's definition.
func (s *valueScanner) located(err error) error {
	se, ok := err.(*SyntaxError)
	if !ok || s.line == s.e.Line || s.e.Quote != '"' {
		return err
	}
	msg := strings.TrimPrefix(se.Msg, s.e.Key+": ")
	return s.p.errorf(s.e.Line, "%s: the double quote opened on this line is not closed on it, so the value runs on to line %d, where it fails (%s); "+
		"add the missing \" on line %d", s.e.Key, se.Line, msg, s.e.Line)
}

// more appends the next line when a double-quoted value continues past the
// end of the current one, and reports whether there is more to scan.
func (s *valueScanner) more(st state) bool {
	if (st != stDouble && st != stEscape) || s.from < 0 || s.p.next >= len(s.p.lines) {
		return false
	}
	s.v = s.p.text[s.from:s.p.ends[s.p.next]] // the value so far, "\n", the next line
	s.p.next++
	return true
}

// step consumes the byte at i in state st and returns the next state.
func (s *valueScanner) step(st state, i int) (state, error) {
	c := s.v[i]
	switch st {
	case stInitial, stUnquoted:
		switch {
		case st == stInitial && (c == '\'' || c == '"'):
			s.e.Quote = c
			if c == '"' {
				return stDouble, nil
			}
			return stSingle, nil
		case c == '#':
			return stComment, nil
		case st == stUnquoted && isSpace(c):
			return stSpace, nil
		}
		s.add(c, c == '$')
		return stUnquoted, nil
	case stSingle:
		if c == '\'' {
			return stSpace, nil
		}
		s.add(c, false)
		return stSingle, nil
	case stDouble:
		switch c {
		case '"':
			return stSpace, nil
		case '\\':
			return stEscape, nil
		}
		s.add(c, c == '$')
		return stDouble, nil
	case stEscape:
		return s.escape(c)
	case stSpace:
		switch {
		case c == '#':
			return stComment, nil
		case !isSpace(c):
			return st, s.trailing(i)
		}
		return stSpace, nil
	}
	return stComment, nil
}

// escape handles the byte after a backslash in a double-quoted value.
func (s *valueScanner) escape(c byte) (state, error) {
	switch c {
	case '"', '\\', '$':
		s.add(c, false) // an escaped "\$" is never interpolated
	case 'f':
		s.add('\f', false)
	case 'n':
		s.add('\n', false)
	case 'r':
		s.add('\r', false)
	case 't':
		s.add('\t', false)
	case 'v':
		s.add('\v', false)
	default:
		what := fmt.Sprintf(`escape sequence \%c`, c)
		switch {
		case c == '\n':
			what = `'\' at the end of the line`
		case c <= ' ' || c >= 0x7f:
			what = fmt.Sprintf(`'\' before %q`, []byte{c})
		}
		return stEscape, s.p.errorf(s.line, `%s: unexpected %s in a double-quoted value (allowed: \n \r \t \f \v \" \\ \$)`, s.e.Key, what)
	}
	return stDouble, nil
}

// trailing reports text after a closing quote or after whitespace in a
// bare value, both of which Laravel refuses.
func (s *valueScanner) trailing(i int) error {
	rest, _, _ := strings.Cut(s.v[i:], "\n")
	if s.e.Quote != 0 {
		return s.p.errorf(s.line, "%s: unexpected %q after the closing quote", s.e.Key, clip(rest))
	}
	word := strings.TrimRight(s.v[:i], phpTrim+"\f")
	return s.p.errorf(s.line, "%s: unquoted value %q contains whitespace; Laravel refuses it: put it in double quotes",
		s.e.Key, clip(word+" "+rest))
}

// add appends c to the value; ref marks a '$' that may start ${NAME}.
func (s *valueScanner) add(c byte, ref bool) {
	if ref {
		s.e.refs = append(s.e.refs, s.b.Len())
	}
	s.b.WriteByte(c)
}
