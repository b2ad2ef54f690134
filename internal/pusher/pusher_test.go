package pusher

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParseChannel(t *testing.T) {
	cases := []struct {
		name  string
		kind  Kind
		cache bool
	}{
		{"orders", Public, false},
		{"company.1.marketplace.2.orders", Public, false},
		{"cache-prices", Public, true},
		{"private-App.Models.User.1", Private, false},
		{"private-cache-x", Private, true},
		{"private-encrypted-x", PrivateEncrypted, false},
		{"private-encrypted-cache-x", PrivateEncrypted, true},
		{"presence-chat.1", Presence, false},
		{"presence-cache-room", Presence, true},
		{"#server-to-user-7", ServerToUser, false},
		{"privatefoo", Public, false},
	}
	for _, c := range cases {
		got := ParseChannel(c.name)
		if got.Kind != c.kind || got.Cache != c.cache {
			t.Errorf("ParseChannel(%q) = %+v, want kind %d cache %v", c.name, got, c.kind, c.cache)
		}
	}
}

func TestValidateChannelName(t *testing.T) {
	ok := []string{"a", "private-App.Models.User.1", "x_-=@,.;", strings.Repeat("a", 164), "#server-to-user-42"}
	for _, n := range ok {
		if err := ValidateChannelName(n, 164); err != nil {
			t.Errorf("ValidateChannelName(%q) = %v, want nil", n, err)
		}
	}
	bad := []string{"", "bad name", "ü", strings.Repeat("a", 165), "a/b", "#server-to-user-", "#other", "a:b"}
	for _, n := range bad {
		err := ValidateChannelName(n, 164)
		var pe *Error
		if !errors.As(err, &pe) || pe.Code != CodeGeneric || pe.Close {
			t.Errorf("ValidateChannelName(%q) = %v, want non-closing 4200 error", n, err)
		}
	}
}

func TestDecodeFrame(t *testing.T) {
	f, err := DecodeFrame([]byte(`{"event":"client-typing","channel":"private-a","data":{"x":1}}`))
	if err != nil || f.Event != "client-typing" || f.Channel != "private-a" || string(f.Data) != `{"x":1}` {
		t.Fatalf("DecodeFrame = %+v, %v", f, err)
	}
	for _, in := range []string{``, `nope`, `[]`, `{}`, `{"event":5}`, `{"event":""}`, `{"event":"x","channel":7}`} {
		_, err := DecodeFrame([]byte(in))
		var pe *Error
		if !errors.As(err, &pe) || pe.Code != CodeGeneric {
			t.Errorf("DecodeFrame(%q) = %v, want 4200", in, err)
		}
	}
}

func TestDecodeSubscribe(t *testing.T) {
	s, err := DecodeSubscribe(json.RawMessage(`{"channel":"presence-a","auth":"k:s","channel_data":"{\"user_id\":1}"}`))
	if err != nil || s.Channel != "presence-a" || s.Auth != "k:s" || s.ChannelData != `{"user_id":1}` {
		t.Fatalf("got %+v, %v", s, err)
	}
	// data double-encoded as a string, as some clients send it
	s, err = DecodeSubscribe(json.RawMessage(`"{\"channel\":\"a\"}"`))
	if err != nil || s.Channel != "a" {
		t.Fatalf("string data: got %+v, %v", s, err)
	}
	for _, in := range []string{``, `null`, `5`, `{}`, `{"channel":5}`, `{"channel":""}`} {
		if _, err := DecodeSubscribe(json.RawMessage(in)); err == nil {
			t.Errorf("DecodeSubscribe(%q) succeeded", in)
		}
	}
}

func TestParseChannelData(t *testing.T) {
	m, err := ParseChannelData(`{"user_id":7,"user_info":{"name":"Ann"}}`, 128, 1024)
	if err != nil || m.UserID != "7" || string(m.Info) != `{"name":"Ann"}` {
		t.Fatalf("numeric id: %+v, %v", m, err)
	}
	m, err = ParseChannelData(`{"user_id":"u-1"}`, 128, 1024)
	if err != nil || m.UserID != "u-1" || m.Info != nil {
		t.Fatalf("string id: %+v, %v", m, err)
	}
	for _, in := range []string{`{}`, `{"user_id":""}`, `{"user_id":null}`, `{"user_id":{}}`, `x`,
		`{"user_id":"` + strings.Repeat("a", 129) + `"}`, `{"user_id":"a","user_info":"` + strings.Repeat("b", 1100) + `"}`} {
		if _, err := ParseChannelData(in, 128, 1024); err == nil {
			t.Errorf("ParseChannelData(%q) succeeded", in)
		}
	}
}

func TestDecodeSignin(t *testing.T) {
	_, u, err := DecodeSignin(json.RawMessage(`{"auth":"k:s","user_data":"{\"id\":\"1\",\"watchlist\":[\"2\"]}"}`))
	if err != nil || u.ID != "1" || len(u.Watchlist) != 1 {
		t.Fatalf("got %+v, %v", u, err)
	}
	for _, in := range []string{`{}`, `{"auth":"k:s","user_data":"{\"id\":1}"}`, `{"auth":"k:s","user_data":"x"}`, `{"auth":"","user_data":"{\"id\":\"1\"}"}`} {
		_, _, err := DecodeSignin(json.RawMessage(in))
		var pe *Error
		if !errors.As(err, &pe) || pe.Code != CodeUnauthorized || !pe.Close {
			t.Errorf("DecodeSignin(%q) = %v, want closing 4009", in, err)
		}
	}
}

// The exact wire forms pusher-js parses.
func TestEncodeWire(t *testing.T) {
	cases := []struct{ got, want string }{
		{string(ConnectionEstablished("123.456", 30)), `{"event":"pusher:connection_established","data":"{\"socket_id\":\"123.456\",\"activity_timeout\":30}"}`},
		{string(ErrorFrame(4009, `bad "auth"`)), `{"event":"pusher:error","data":"{\"code\":4009,\"message\":\"bad \\\"auth\\\"\"}"}`},
		{string(SubscriptionSucceeded("a", nil)), `{"event":"pusher_internal:subscription_succeeded","channel":"a","data":"{}"}`},
		{string(Event("orders", "orders.updated", `{"n":1}`)), `{"event":"orders.updated","channel":"orders","data":"{\"n\":1}"}`},
		{string(ClientEvent("presence-a", "client-x", json.RawMessage(`{"t":1}`), "7")), `{"event":"client-x","channel":"presence-a","data":{"t":1},"user_id":"7"}`},
		{string(CacheMiss("cache-a")), `{"event":"pusher:cache_miss","channel":"cache-a"}`},
		{string(MemberRemoved("presence-a", "7")), `{"event":"pusher_internal:member_removed","channel":"presence-a","data":"{\"user_id\":\"7\"}"}`},
		{string(MemberAdded("presence-a", Member{UserID: "7", Info: json.RawMessage(`{"n":"A"}`)})), `{"event":"pusher_internal:member_added","channel":"presence-a","data":"{\"user_id\":\"7\",\"user_info\":{\"n\":\"A\"}}"}`},
		{string(PresenceData([]Member{{UserID: "1", Info: json.RawMessage(`{"a":1}`)}, {UserID: "2"}})), `{"presence":{"ids":["1","2"],"hash":{"1":{"a":1},"2":null},"count":2}}`},
		{string(SigninSuccess(`{"id":"1"}`)), `{"event":"pusher:signin_success","data":"{\"user_data\":\"{\\\"id\\\":\\\"1\\\"}\"}"}`},
		{string(WatchlistEvents("online", []string{"2"})), `{"event":"pusher_internal:watchlist_events","data":"{\"events\":[{\"name\":\"online\",\"user_ids\":[\"2\"]}]}"}`},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("got  %s\nwant %s", c.got, c.want)
		}
		if !json.Valid([]byte(c.got)) {
			t.Errorf("not valid JSON: %s", c.got)
		}
	}
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", "quote\"back\\slash", "ctl\x00\x01\x1f\n\r\t", "üñí©ødé", "\u2028\u2029", "bad\xffutf8"} {
		var back string
		if err := json.Unmarshal(AppendString(nil, s), &back); err != nil {
			t.Fatalf("AppendString(%q) invalid: %v", s, err)
		}
		want, _ := json.Marshal(s)
		var wantBack string
		_ = json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Errorf("round trip of %q: got %q want %q", s, back, wantBack)
		}
	}
}

func TestSocketID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewSocketID()
		if !ValidSocketID(id) {
			t.Fatalf("invalid socket id %q", id)
		}
		if seen[id] {
			t.Fatalf("duplicate socket id %q", id)
		}
		seen[id] = true
	}
	for _, bad := range []string{"", "1", "1.", ".1", "a.b", "1.2.3", "1.2\n"} {
		if ValidSocketID(bad) {
			t.Errorf("ValidSocketID(%q) = true", bad)
		}
	}
}

func FuzzDecodeFrame(f *testing.F) {
	for _, s := range []string{
		`{"event":"pusher:ping","data":{}}`,
		`{"event":"pusher:subscribe","data":{"channel":"presence-a","auth":"k:s","channel_data":"{\"user_id\":1}"}}`,
		`{"event":"pusher:signin","data":{"auth":"k:s","user_data":"{\"id\":\"1\"}"}}`,
		`{"event":"client-x","channel":"private-a","data":"str"}`,
		`{"event":"pusher:subscribe","data":"{\"channel\":\"a\"}"}`,
		`not json`, `{"event":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := DecodeFrame(b)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || pe.Close {
				t.Fatalf("decode error must be a non-closing *Error: %v", err)
			}
			return
		}
		if fr.Event == "" {
			t.Fatal("decoded frame without event")
		}
		if s, err := DecodeSubscribe(fr.Data); err == nil {
			if s.Channel == "" {
				t.Fatal("subscribe without channel")
			}
			_ = ValidateChannelName(s.Channel, 164)
			_ = ParseChannel(s.Channel)
			_, _ = ParseChannelData(s.ChannelData, 128, 1024)
		}
		_, _, _ = DecodeSignin(fr.Data)
		out := ClientEvent(fr.Channel, fr.Event, fr.Data, "u")
		if !json.Valid(out) {
			t.Fatalf("relayed client event is not JSON: %s", out)
		}
	})
}

func FuzzChannelName(f *testing.F) {
	for _, s := range []string{"a", "private-encrypted-cache-x", "#server-to-user-1", "bad name", "presence-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidateChannelName(s, 164)
		if err == nil && (len(s) == 0 || len(s) > 164) {
			t.Fatalf("accepted %q", s)
		}
		_ = ParseChannel(s)
		if !json.Valid(Event(s, s, s)) {
			t.Fatalf("Event not JSON for %q", s)
		}
	})
}

func BenchmarkDecodeFrame(b *testing.B) {
	msg := []byte(`{"event":"client-typing","channel":"private-chat.1","data":{"user":"ann","typing":true}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeFrame(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeEvent(b *testing.B) {
	data := `{"company_id":1,"marketplace_account_id":2,"new_orders_count":3,"stats":{"total":120}}`
	b.ReportAllocs()
	for b.Loop() {
		_ = Event("company.1.marketplace.2.orders", "orders.updated", data)
	}
}
