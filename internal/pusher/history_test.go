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
		if err == nil && s.Epoch == "" {
			t.Fatalf("%s decoded to an empty epoch", b)
		}
	})
}
