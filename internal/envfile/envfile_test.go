package envfile

import (
	"fmt"
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

func TestParseForms(t *testing.T) {
	f := parse(t, `# comment
APP_NAME="Herald Demo"
APP_ENV=local # trailing comment
export REVERB_APP_KEY=abc123
EMPTY=
SPACED = value
SINGLE='literal ${APP_ENV} # not a comment'
ESCAPED="line1\nline2 \"q\" \\ \$HOME"
MULTI="first
second"
URL=https://example.com/#anchor
`)
	want := map[string]string{
		"APP_NAME":       "Herald Demo",
		"APP_ENV":        "local",
		"REVERB_APP_KEY": "abc123",
		"EMPTY":          "",
		"SPACED":         "value",
		"SINGLE":         "literal ${APP_ENV} # not a comment",
		"ESCAPED":        "line1\nline2 \"q\" \\ $HOME",
		"MULTI":          "first\nsecond",
		"URL":            "https://example.com/#anchor",
	}
	for k, v := range want {
		e, ok := f.Lookup(k)
		if !ok || e.Value != v {
			t.Errorf("%s = %q (found %v), want %q", k, e.Value, ok, v)
		}
	}
	if e, _ := f.Lookup("REVERB_APP_KEY"); !e.Export || e.Line != 4 {
		t.Errorf("export entry %+v", e)
	}
	if e, _ := f.Lookup("SINGLE"); e.Quote != '\'' {
		t.Errorf("quote %q", e.Quote)
	}
	if e, _ := f.Lookup("URL"); e.Line != 11 {
		t.Errorf("line after a multi-line value: %d", e.Line)
	}
}

func TestErrors(t *testing.T) {
	cases := map[string]string{
		"A=1\nnot a definition\n": ".env:2: expected KEY=VALUE",
		"1ABC=x":                  ".env:1: invalid variable name",
		"A=\"open\nstill open\n":  ".env:1: unterminated \"-quoted value",
		"A=two words":             ".env:1: A: unquoted value \"two words\" contains whitespace",
		"A=\"x\" y":               ".env:1: unexpected \"y\" after the closing quote",
		"OK=1\nB-C=2":             ".env:2: invalid variable name",
	}
	for in, want := range cases {
		_, err := Parse(".env", strings.NewReader(in))
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want prefix %q", in, err, want)
		}
	}
}

// The seed's .env.example: BROADCAST_CONNECTION at lines 40 and 85.
func TestDuplicatesSeed(t *testing.T) {
	lines := make([]string, 100)
	for i := range lines {
		lines[i] = fmt.Sprintf("# line %d", i+1)
	}
	lines[39] = "BROADCAST_CONNECTION=redis"
	lines[84] = "BROADCAST_CONNECTION=reverb"
	lines[97] = "BROADCAST_DRIVER=pusher"
	f := parse(t, strings.Join(lines, "\n"))
	d := f.Duplicates()
	bc := d["BROADCAST_CONNECTION"]
	if len(d) != 1 || len(bc) != 2 || bc[0].Line != 40 || bc[1].Line != 85 || bc[0].Value != "redis" {
		t.Fatalf("duplicates %+v", d)
	}
	if e, _ := f.Lookup("BROADCAST_CONNECTION"); e.Value != "reverb" || e.Line != 85 {
		t.Fatalf("effective %+v", e)
	}
}

func TestResolve(t *testing.T) {
	f := parse(t, `REVERB_HOST=ws.example.com
REVERB_PORT=443
VITE_REVERB_HOST="${REVERB_HOST}"
VITE_REVERB_PORT=${REVERB_PORT}
VITE_LITERAL='${REVERB_HOST}'
FROM_ENV="${HOME_DIR}/x"
DEFAULTED=${MISSING:-fallback}
`)
	env := func(k string) (string, bool) {
		if k == "HOME_DIR" {
			return "/home/app", true
		}
		if k == "REVERB_PORT" {
			return "8443", true // the process environment wins
		}
		return "", false
	}
	got := f.Resolve(env)
	want := map[string]string{"VITE_REVERB_HOST": "ws.example.com", "VITE_REVERB_PORT": "8443", "VITE_LITERAL": "${REVERB_HOST}", "FROM_ENV": "/home/app/x", "DEFAULTED": "fallback"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if refs := References("${A}-${B:-x}"); fmt.Sprint(refs) != "[A B]" {
		t.Errorf("References = %v", refs)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"A=1\n", "export B=\"x\ny\"\n", "C='z' # c\n", "D=${A}\n", "#x\n\nE=\n", "F=\"\\n\\\"\"\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		file, err := Parse(".env", strings.NewReader(s))
		if err != nil {
			if !strings.HasPrefix(err.Error(), ".env") {
				t.Fatalf("error without location: %v", err)
			}
			return
		}
		for _, e := range file.Entries {
			if !validKey(e.Key) || e.Line < 1 {
				t.Fatalf("bad entry %+v", e)
			}
		}
		_ = file.Resolve(nil)
		_ = file.Duplicates()
	})
}
