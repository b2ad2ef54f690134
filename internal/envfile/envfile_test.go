package envfile

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
)

func parse(t *testing.T, s string) *File {
	t.Helper()
	f, err := Parse(".env", strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestParse(t *testing.T) {
	cases := []struct {
		name, in string
		key      string // the entry checked (its last definition)
		want     Entry  // Key, Value, Line, Quote, Export are compared
	}{
		{"plain", "KEY=value", "KEY", Entry{Value: "value", Line: 1}},
		{"export", "export KEY=value", "KEY", Entry{Value: "value", Line: 1, Export: true}},
		{"export with a tab", "export\tKEY=value", "KEY", Entry{Value: "value", Line: 1, Export: true}},
		{"spaces around =", "  KEY  =  value  ", "KEY", Entry{Value: "value", Line: 1}},
		{"empty", "KEY=", "KEY", Entry{Value: "", Line: 1}},
		{"empty with blanks", "KEY=   ", "KEY", Entry{Value: "", Line: 1}},
		{"empty double quotes", `KEY=""`, "KEY", Entry{Value: "", Line: 1, Quote: '"'}},
		{"inline comment", "KEY=value # note", "KEY", Entry{Value: "value", Line: 1}},
		{"comment only", "KEY=# note", "KEY", Entry{Value: "", Line: 1}},
		{"hash ends a bare value", "URL=https://example.com/#anchor", "URL", Entry{Value: "https://example.com/", Line: 1}},
		{"hash inside quotes", `KEY="a # b" # c`, "KEY", Entry{Value: "a # b", Line: 1, Quote: '"'}},
		{"comment right after the quote", `KEY="a"#c`, "KEY", Entry{Value: "a", Line: 1, Quote: '"'}},
		{"equals in value", "KEY=a=b", "KEY", Entry{Value: "a=b", Line: 1}},
		{"single quotes are literal", `KEY='lit ${X} \n # no'`, "KEY", Entry{Value: `lit ${X} \n # no`, Line: 1, Quote: '\''}},
		{"double-quote escapes", `KEY="a\nb \"q\" \\ \$X \t\r\f\v"`, "KEY", Entry{Value: "a\nb \"q\" \\ $X \t\r\f\v", Line: 1, Quote: '"'}},
		{"backslash in a bare value", `KEY=a\nb`, "KEY", Entry{Value: `a\nb`, Line: 1}},
		{"quote inside a bare value", `KEY=it's`, "KEY", Entry{Value: "it's", Line: 1}},
		{"interpolation is not done by Parse", "KEY=${A}/x", "KEY", Entry{Value: "${A}/x", Line: 1}},
		{"quoted name", `'KEY'=v`, "KEY", Entry{Value: "v", Line: 1}},
		{"dots and digits in names", "1.KEY_2=v", "1.KEY_2", Entry{Value: "v", Line: 1}},
		{"multi-line", "A=1\nKEY=\"first\n  second\nthird\"\nB=2", "KEY", Entry{Value: "first\n  second\nthird", Line: 2, Quote: '"'}},
		{"line after a multi-line value", "KEY=\"x\ny\"\nNEXT=1", "NEXT", Entry{Value: "1", Line: 3}},
		{"multi-line keeps trailing blanks", "KEY=\"a  \nb\"", "KEY", Entry{Value: "a  \nb", Line: 1, Quote: '"'}},
		{"escaped quote in a multi-line value", "KEY=\"a\\\"\nb\"", "KEY", Entry{Value: "a\"\nb", Line: 1, Quote: '"'}},
		{"comments and blanks", "# c\n\n   # indented\nKEY=v", "KEY", Entry{Value: "v", Line: 4}},
		{"CRLF", "A=1\r\nKEY=\"x\r\ny\"\r\n", "KEY", Entry{Value: "x\ny", Line: 2, Quote: '"'}},
		{"old Mac CR", "A=1\rKEY=v\r", "KEY", Entry{Value: "v", Line: 2}},
		{"byte order mark", "\uFEFFKEY=v", "KEY", Entry{Value: "v", Line: 1}},
		{"last definition wins", "KEY=a\nKEY=b", "KEY", Entry{Value: "b", Line: 2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, ok := parse(t, c.in).Lookup(c.key)
			c.want.Key = c.key
			got := Entry{Key: e.Key, Value: e.Value, Line: e.Line, Quote: e.Quote, Export: e.Export}
			if !ok || got.Key != c.want.Key || got.Value != c.want.Value || got.Line != c.want.Line || got.Quote != c.want.Quote || got.Export != c.want.Export {
				t.Errorf("Lookup(%q) = %+v (found %v)\nwant %+v", c.key, got, ok, c.want)
			}
		})
	}
}

func TestRawAndEntries(t *testing.T) {
	f := parse(t, "# top\nexport AA=1 # one\nB=\"x\ny\"\n")
	want := []struct {
		key, raw string
		line     int
	}{{"AA", "export AA=1 # one", 2}, {"B", `B="x`, 3}}
	if len(f.Entries) != len(want) {
		t.Fatalf("entries %+v", f.Entries)
	}
	for i, w := range want {
		if e := f.Entries[i]; e.Key != w.key || e.Raw != w.raw || e.Line != w.line {
			t.Errorf("entry %d = %+v, want %+v", i, e, w)
		}
	}
	if f.Path != ".env" {
		t.Errorf("path %q", f.Path)
	}
}

func TestErrors(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"no equals", "A=1\nnot a definition\n", `.env:2: expected KEY=VALUE (got "not a definition")`},
		{"bare name", "A=1\n\nLONELY", `.env:3: expected KEY=VALUE (got "LONELY")`},
		{"no name", "=value", `.env:1: missing variable name before '='`},
		{"dash in name", "OK=1\nB-C=2", `.env:2: invalid variable name "B-C" (use letters, digits, '_' and '.')`},
		{"space in name", "MY KEY=1", `.env:1: invalid variable name "MY KEY" (use letters, digits, '_' and '.')`},
		{"export of a one-letter name (as phpdotenv)", "export A=1", `.env:1: invalid variable name "export A" (use letters, digits, '_' and '.')`},
		{"unterminated double quote", "A=1\nB=\"open\nstill open\n", `.env:2: B: missing closing " quote`},
		{"quote after a blank does not continue", "A= \"open\nB=1", `.env:1: A: missing closing " quote`},
		{"unterminated single quote", "A='open\nx'", `.env:1: A: missing closing ' quote (single-quoted values cannot span lines)`},
		{"whitespace in a bare value", "A=two words", `.env:1: A: unquoted value "two words" contains whitespace; Laravel refuses it: put it in double quotes`},
		{"text after the quote", `A="x" y`, `.env:1: A: unexpected "y" after the closing quote`},
		{"text after a single quote", `A='x'y`, `.env:1: A: unexpected "y" after the closing quote`},
		{"unknown escape", `A="C:\path"`, `.env:1: A: unexpected escape sequence \p in a double-quoted value (allowed: \n \r \t \f \v \" \\ \$)`},
		{"unknown escape on a later line", "A=\"ok\nC:\\dir\"", `.env:1: A: the double quote opened on this line is not closed on it, so the value runs on to line 2, where it fails (unexpected escape sequence \d in a double-quoted value (allowed: \n \r \t \f \v \" \\ \$)); add the missing " on line 1`},
		// The seed's shape: a secret lost its closing quote, and the value
		// runs on until the next line with a quote, in another variable.
		{"unterminated quote ending in a later definition", "REVERB_APP_SECRET=\"abc\nREVERB_HOST=localhost\nVITE_REVERB_APP_KEY=\"${REVERB_APP_KEY}\"\n",
			`.env:1: REVERB_APP_SECRET: the double quote opened on this line is not closed on it, so the value runs on to line 3, where it fails (unexpected "${REVERB_APP_KEY}\"" after the closing quote); add the missing " on line 1`},
		{"backslash at the end of a line", "A=\"x\\\ny\"", `.env:1: A: unexpected '\' at the end of the line in a double-quoted value (allowed: \n \r \t \f \v \" \\ \$)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := Parse(".env", strings.NewReader(c.in))
			if err == nil {
				t.Fatalf("parsed: %+v", f.Entries)
			}
			if err.Error() != c.want {
				t.Errorf("error\n got %s\nwant %s", err, c.want)
			}
			var se *SyntaxError
			if !errors.As(err, &se) || se.Path != ".env" || se.Line < 1 {
				t.Errorf("not a located *SyntaxError: %#v", err)
			}
		})
	}
}

// seedEnv has the shape of the seed project's .env: BROADCAST_CONNECTION
// defined in a "VPS" section at line 40 and again in the Reverb section at
// line 85.
func seedEnv() string {
	lines := make([]string, 100)
	for i := range lines {
		lines[i] = fmt.Sprintf("# line %d", i+1)
	}
	lines[0] = `APP_NAME="Marketplace"`
	lines[39] = "BROADCAST_CONNECTION=redis"
	lines[84] = "BROADCAST_CONNECTION=reverb"
	lines[85] = "REVERB_APP_KEY=q8w3n5v7x2c4b6m9z1"
	lines[86] = `VITE_REVERB_APP_KEY="${REVERB_APP_KEY}"`
	lines[97] = "BROADCAST_DRIVER=pusher"
	return strings.Join(lines, "\n") + "\n"
}

func TestDuplicatesSeed(t *testing.T) {
	f := parse(t, seedEnv())
	d := f.Duplicates()
	bc := d["BROADCAST_CONNECTION"]
	if len(d) != 1 || len(bc) != 2 {
		t.Fatalf("Duplicates() = %+v, want only BROADCAST_CONNECTION twice", d)
	}
	if bc[0].Line != 40 || bc[0].Value != "redis" || bc[1].Line != 85 || bc[1].Value != "reverb" {
		t.Errorf("definitions %+v, want redis at 40 and reverb at 85", bc)
	}
	if e, ok := f.Lookup("BROADCAST_CONNECTION"); !ok || e.Value != "reverb" || e.Line != 85 {
		t.Errorf("Lookup = %+v, want line 85's reverb", e)
	}
	if got := f.Resolve(nil)["VITE_REVERB_APP_KEY"]; got != "q8w3n5v7x2c4b6m9z1" {
		t.Errorf("VITE_REVERB_APP_KEY resolved to %q", got)
	}
	if _, ok := f.Lookup("MISSING"); ok {
		t.Error("Lookup found a key that is not defined")
	}
}

func TestResolve(t *testing.T) {
	env := map[string]string{"HOME_DIR": "/home/app", "REVERB_PORT": "8443", "EMPTY_ENV": ""}
	environ := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cases := []struct{ name, in, key, want string }{
		{"earlier key", "A=x\nB=\"${A}\"", "B", "x"},
		{"bare value", "A=x\nB=${A}/y", "B", "x/y"},
		{"environment", "B=\"${HOME_DIR}/x\"", "B", "/home/app/x"},
		{"environment wins over the file", "REVERB_PORT=443\nB=${REVERB_PORT}", "B", "8443"},
		{"the key itself keeps its file value", "REVERB_PORT=443", "REVERB_PORT", "443"},
		{"empty environment value is defined", "EMPTY_ENV=file\nB=[${EMPTY_ENV}]", "B", "[]"},
		{"unknown stays as written", "B=\"${NOPE}-x\"", "B", "${NOPE}-x"},
		{"later key is not yet known", "B=${A}\nA=x", "B", "${A}"},
		{"redefinition", "A=1\nA=2\nB=${A}", "B", "2"},
		{"single quotes are literal", "A=x\nB='${A}'", "B", "${A}"},
		{"escaped dollar is literal", "A=x\nB=\"\\${A} ${A}\"", "B", "${A} x"},
		{"several references", "A=a\nC=c\nB=\"${A}${C}-${A}\"", "B", "ac-a"},
		{"replacement not rescanned", "A='${C}'\nC=c\nB=${A}", "B", "${C}"},
		{"no default syntax", "B=${NOPE:-d}", "B", "${NOPE:-d}"},
		{"plain dollar", "A=x\nB=\"$A ${ A} ${A\"", "B", "$A ${ A} ${A"},
		{"multi-line", "A=x\nB=\"1 ${A}\n2 ${A}\"", "B", "1 x\n2 x"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := parse(t, c.in).Resolve(environ)[c.key]; got != c.want {
				t.Errorf("%s = %q, want %q", c.key, got, c.want)
			}
		})
	}
	if got := parse(t, "A=x\nB=${A}").Resolve(nil)["B"]; got != "x" {
		t.Errorf("nil environ: %q", got)
	}
}

// Effective is Laravel's view: the environment wins for the key itself,
// even when it is empty.
func TestEffective(t *testing.T) {
	env := map[string]string{"REVERB_PORT": "8443", "EMPTY_ENV": ""}
	environ := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	got := parse(t, "REVERB_PORT=443\nEMPTY_ENV=file\nB=${REVERB_PORT}\nC=c").Effective(environ)
	want := map[string]string{"REVERB_PORT": "8443", "EMPTY_ENV": "", "B": "8443", "C": "c"}
	if !maps.Equal(got, want) {
		t.Fatalf("Effective = %q, want %q", got, want)
	}
	if got := parse(t, "A=1").Effective(nil)["A"]; got != "1" {
		t.Fatalf("nil environ: %q", got)
	}
}

func TestReferences(t *testing.T) {
	f := parse(t, "A=\"${X}-${Y.Z} \\${NOT}\"\nB='${LIT}'\nC=$NONE")
	cases := []struct {
		key  string
		want []string
	}{{"A", []string{"X", "Y.Z"}}, {"B", nil}, {"C", nil}}
	for _, c := range cases {
		e, _ := f.Lookup(c.key)
		if got := e.References(); !slices.Equal(got, c.want) {
			t.Errorf("%s.References() = %q, want %q", c.key, got, c.want)
		}
	}
	if e, _ := parse(t, `D="${A}-${B:-x}${C}${"`).Lookup("D"); !slices.Equal(e.References(), []string{"A", "C"}) {
		t.Errorf("References = %q", e.References())
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"A=1\n", "export B=\"x\ny\"\n", "C='z' # c\n", "D=${A}\n", "#x\n\nE=\n", "F=\"\\n\\\"\"\n",
		seedEnv(), "G=\"a\\$ ${B}\"\r\n", "'H'=1", "I=\"x\\q\"", "J=a b", "=", "export  K.L=\"${M}${N}\"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		file, err := Parse(".env", strings.NewReader(s))
		lines := len(strings.Split(normalize(s), "\n"))
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Line < 1 || se.Line > lines || !strings.HasPrefix(err.Error(), fmt.Sprintf(".env:%d: ", se.Line)) {
				t.Fatalf("error without a valid location: %v", err)
			}
			return
		}
		for _, e := range file.Entries {
			if !ValidName(e.Key) || e.Line < 1 || e.Line > lines {
				t.Fatalf("bad entry %+v", e)
			}
			if got := e.Interpolate(func(string) (string, bool) { return "", false }); got != e.Value {
				t.Fatalf("interpolating nothing changed %q to %q", e.Value, got)
			}
			for _, name := range e.References() {
				if !ValidName(name) {
					t.Fatalf("reference %q", name)
				}
			}
		}
		_ = file.Resolve(func(k string) (string, bool) { return "${" + k + "}", len(k)%2 == 0 })
		for k, es := range file.Duplicates() {
			if len(es) < 2 || es[0].Key != k {
				t.Fatalf("duplicates %q: %+v", k, es)
			}
		}
	})
}
