package pusher

import (
	"encoding/json"
	"strings"
	"testing"
	"unsafe"
)

func TestAppendPosition(t *testing.T) {
	f := Event("orders", "created", strings.Repeat("x", 100))
	p := unsafe.SliceData(f)
	got := AppendPosition(f, "abcdefgh12345678", 18446744073709551615)
	want := `{"event":"created","channel":"orders","data":"` + strings.Repeat("x", 100) + `","epoch":"abcdefgh12345678","offset":18446744073709551615}`
	if string(got) != want {
		t.Fatalf("got %s", got)
	}
	if unsafe.SliceData(got) != p {
		t.Error("AppendPosition copied an Event frame: Event must leave room for the position")
	}
	ce := ClientEvent("private-a", "client-x", json.RawMessage(`{"a":1}`), "u1")
	p = unsafe.SliceData(ce)
	if got := AppendPosition(ce, "e1", 7); string(got) != `{"event":"client-x","channel":"private-a","data":{"a":1},"user_id":"u1","epoch":"e1","offset":7}` || unsafe.SliceData(got) != p {
		t.Errorf("client event: %s", got)
	}
}

func TestResumeFailed(t *testing.T) {
	got := string(ResumeFailed("private-a", "ep1", 42))
	if want := `{"event":"herald:resume_failed","channel":"private-a","data":"{\"epoch\":\"ep1\",\"offset\":42}"}`; got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
}

func TestDecodeSubscribeSince(t *testing.T) {
	s, err := DecodeSubscribe(json.RawMessage(`{"channel":"a","since":{"epoch":"e","offset":12}}`))
	if err != nil || s.Since == nil || *s.Since != (Since{Epoch: "e", Offset: 12}) {
		t.Fatalf("got %+v %v", s, err)
	}
	if s, err := DecodeSubscribe(json.RawMessage(`"{\"channel\":\"a\",\"since\":null}"`)); err != nil || s.Since != nil {
		t.Errorf("null since: %+v %v", s, err)
	}
	for _, bad := range []string{`"e:1"`, `{}`, `{"epoch":"","offset":1}`, `{"epoch":"e","offset":-1}`, `{"epoch":"e","offset":1.5}`, `{"epoch":1,"offset":1}`, `{"epoch":"e","offset":1e99}`, `[]`} {
		if _, err := DecodeSubscribe(json.RawMessage(`{"channel":"a","since":` + bad + `}`)); err == nil {
			t.Errorf("since %s accepted", bad)
		}
	}
}

func FuzzDecodeSince(f *testing.F) {
	for _, s := range []string{`{"epoch":"abc","offset":0}`, `{"epoch":"x","offset":18446744073709551615}`, `{"epoch":"x","offset":"3"}`, `{"epoch":"e","offset":-1}`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeSince(b)
		if err == nil && (s.Epoch == "" && s.Offset != 0 || !validEpoch(s.Epoch)) {
			t.Fatalf("%s decoded to %+v", b, s)
		}
	})
}

func TestDecodeSinceEmptyEpoch(t *testing.T) {
	s, err := DecodeSince([]byte(`{"epoch":"","offset":0}`))
	if err != nil || s != (Since{}) {
		t.Fatalf("empty position: %+v %v", s, err)
	}
	for _, bad := range []string{`{"epoch":"a:b","offset":1}`, `{"epoch":"a b","offset":1}`, `{"epoch":"` + strings.Repeat("e", MaxEpochLength+1) + `","offset":1}`} {
		if _, err := DecodeSince([]byte(bad)); err == nil {
			t.Errorf("since %s accepted", bad)
		}
	}
}

func TestParseSince(t *testing.T) {
	good := map[string]Since{
		"abc:0":                        {Epoch: "abc", Offset: 0},
		"abc:42":                       {Epoch: "abc", Offset: 42},
		":0":                           {},
		"A-b_c.9:18446744073709551615": {Epoch: "A-b_c.9", Offset: 18446744073709551615},
	}
	for in, want := range good {
		got, err := ParseSince(in)
		if err != nil || got != want {
			t.Errorf("ParseSince(%q) = %+v, %v; want %+v", in, got, err, want)
		}
		if got.String() != in {
			t.Errorf("%+v.String() = %q, want %q", got, got.String(), in)
		}
	}
	for _, bad := range []string{"", "abc", "abc:", ":1", "abc:-1", "abc:+1", "abc:1.5", "abc:1e3", "a:b:1x", "a b:1", "abc:18446744073709551616", strings.Repeat("e", MaxEpochLength+1) + ":1", "é:1", "abc: 1"} {
		if s, err := ParseSince(bad); err == nil {
			t.Errorf("ParseSince(%q) = %+v, want an error", bad, s)
		}
	}
}

func FuzzParseSince(f *testing.F) {
	for _, s := range []string{"abc:0", "x1y2:18446744073709551615", ":0", ":1", "a:b:3", "e:-1", "e:01"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseSince(in)
		if err != nil {
			return
		}
		if s.Epoch == "" && s.Offset != 0 || !validEpoch(s.Epoch) {
			t.Fatalf("%q parsed to %+v", in, s)
		}
		again, err := ParseSince(s.String())
		if err != nil || again != s {
			t.Fatalf("%q: %+v does not round-trip through %q: %+v %v", in, s, s.String(), again, err)
		}
	})
}

func TestDecodeSubscribePosition(t *testing.T) {
	s, err := DecodeSubscribe(json.RawMessage(`{"channel":"a","position":true}`))
	if err != nil || !s.Position || s.Since != nil {
		t.Fatalf("got %+v %v", s, err)
	}
	if s, err := DecodeSubscribe(json.RawMessage(`{"channel":"a"}`)); err != nil || s.Position {
		t.Errorf("without position: %+v %v", s, err)
	}
	if _, err := DecodeSubscribe(json.RawMessage(`{"channel":"a","position":"yes"}`)); err == nil {
		t.Error(`"position":"yes" accepted`)
	}
	if got, want := string(PositionFrame("c", "ep", 7)), `{"event":"herald:position","channel":"c","data":"{\"epoch\":\"ep\",\"offset\":7}"}`; got != want {
		t.Errorf("PositionFrame = %s, want %s", got, want)
	}
}

func TestFramePosition(t *testing.T) {
	for _, f := range [][]byte{
		Event("c", "e", "d"),
		Event("c", "e", `{"a":1,"offset":5,"epoch":"zz"}`),
		ClientEvent("presence-c", "client-x", json.RawMessage(`{"x":1,"epoch":"q","offset":9}`), "u1"),
	} {
		if _, _, ok := FramePosition(f); ok {
			t.Errorf("%s: a position where none was appended", f)
		}
		ep, off, ok := FramePosition(AppendPosition(f, "ep-1.x", 42))
		if !ok || ep != "ep-1.x" || off != 42 {
			t.Errorf("%s: read back %q %d %v", f, ep, off, ok)
		}
	}
	for _, bad := range []string{``, `}`, `{"epoch":"a","offset":1}`, `{,"epoch":"a b","offset":1}`, `{,"epoch":"a","offset":-1}`, `{,"epoch":"a","offset":1x}`} {
		if _, _, ok := FramePosition([]byte(bad)); ok {
			t.Errorf("%q read as positioned", bad)
		}
	}
}

func FuzzFramePosition(f *testing.F) {
	f.Add([]byte(`{"event":"e","channel":"c","data":"d"}`), "abc", uint64(7))
	f.Add([]byte(`{"data":{"offset":1}}`), "", uint64(0))
	f.Fuzz(func(t *testing.T, frame []byte, epoch string, off uint64) {
		FramePosition(frame) // never panics
		if len(frame) == 0 || frame[len(frame)-1] != '}' || !validEpoch(epoch) {
			return
		}
		e, o, ok := FramePosition(AppendPosition(append([]byte(nil), frame...), epoch, off))
		if !ok || e != epoch || o != off {
			t.Fatalf("%q + (%q, %d) read back as (%q, %d, %v)", frame, epoch, off, e, o, ok)
		}
	})
}
