package envfile

// Lookup returns the definition of key that takes effect: the last one,
// as in phpdotenv.
func (f *File) Lookup(key string) (Entry, bool) {
	for i := len(f.Entries) - 1; i >= 0; i-- {
		if f.Entries[i].Key == key {
			return f.Entries[i], true
		}
	}
	return Entry{}, false
}

// Duplicates returns the keys defined more than once, each with all its
// definitions in file order (the last one takes effect).
func (f *File) Duplicates() map[string][]Entry {
	count := map[string]int{}
	for _, e := range f.Entries {
		count[e.Key]++
	}
	out := map[string][]Entry{}
	for _, e := range f.Entries {
		if count[e.Key] > 1 {
			out[e.Key] = append(out[e.Key], e)
		}
	}
	return out
}

// Resolve returns the file's value of every key with ${NAME} references
// replaced, as Laravel loads the file: entries are resolved in file order,
// and a name is looked up first in environ (the process environment, which
// Laravel's immutable repository never lets the file override), then among
// the earlier keys of the file. A reference to an unknown name is left as
// written, and a later definition of a key replaces an earlier one. A key
// keeps its file value even when environ sets it too: a caller that layers
// the environment over the file (Herald's config) applies it itself; see
// Effective for the value Laravel's env() returns. A nil environ means an
// empty environment.
func (f *File) Resolve(environ func(string) (string, bool)) map[string]string {
	out := make(map[string]string, len(f.Entries))
	lookup := func(name string) (string, bool) {
		if environ != nil {
			if v, ok := environ(name); ok {
				return v, true
			}
		}
		v, ok := out[name]
		return v, ok
	}
	for _, e := range f.Entries {
		out[e.Key] = e.Interpolate(lookup)
	}
	return out
}

// Effective is what Laravel's env() returns for each key of the file: the
// environment's value where environ sets the key (even to ""), Resolve's
// otherwise.
func (f *File) Effective(environ func(string) (string, bool)) map[string]string {
	out := f.Resolve(environ)
	if environ != nil {
		for k := range out {
			if v, ok := environ(k); ok {
				out[k] = v
			}
		}
	}
	return out
}

// Interpolate returns e.Value with each ${NAME} reference replaced by
// lookup(NAME); a reference lookup does not know stays as written.
// Replacements are not scanned again.
func (e Entry) Interpolate(lookup func(string) (string, bool)) string {
	s := e.Value
	// Right to left, so the offsets still to visit stay valid (phpdotenv
	// resolves in the same order).
	for i := len(e.refs) - 1; i >= 0; i-- {
		at := e.refs[i]
		name, n := refAt(s, at)
		if n == 0 {
			continue
		}
		if v, ok := lookup(name); ok {
			s = s[:at] + v + s[at+n:]
		}
	}
	return s
}

// References returns the names e's value interpolates, in order. Escaped
// "\$" and single-quoted values have none.
func (e Entry) References() []string {
	var names []string
	for _, at := range e.refs {
		if name, n := refAt(e.Value, at); n > 0 {
			names = append(names, name)
		}
	}
	return names
}

// refAt matches ${NAME} at s[at:], NAME being a valid variable name; it
// returns the name and the length of the match, or 0.
func refAt(s string, at int) (string, int) {
	if at+3 > len(s) || s[at] != '$' || s[at+1] != '{' {
		return "", 0
	}
	for j := at + 2; j < len(s); j++ {
		if s[j] == '}' {
			name := s[at+2 : j]
			if !ValidName(name) {
				return "", 0
			}
			return name, j + 1 - at
		}
		if !ValidName(s[j : j+1]) {
			return "", 0
		}
	}
	return "", 0
}
