package signature_test

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herald-ws/herald/internal/signature"
)

var testNow = time.Unix(1700000000, 0)

const (
	testKey    = "app-key"
	testSecret = "app-secret"
	testPath   = "/apps/42/events"
	testBody   = `{"name":"ping","channels":["chat"],"data":"{}"}`
)

// refStringToSign builds the string Pusher's docs describe, independently of
// the package: METHOD, path, then every parameter but auth_signature with its
// key lowercased, sorted, written k=v and joined with "&".
func refStringToSign(method, path string, q url.Values) string {
	var pairs []string
	for k, vs := range q {
		if strings.ToLower(k) == "auth_signature" {
			continue
		}
		for _, v := range vs {
			pairs = append(pairs, strings.ToLower(k)+"="+v)
		}
	}
	sort.Strings(pairs)
	return strings.ToUpper(method) + "\n" + path + "\n" + strings.Join(pairs, "&")
}

// resign replaces q's auth_signature with a correct one over its content.
func resign(secret, method, path string, q url.Values) {
	q.Del("auth_signature")
	q.Set("auth_signature", refHMAC(secret, refStringToSign(method, path, q)))
}

func md5Hex(b string) string {
	sum := md5.Sum([]byte(b))
	return hex.EncodeToString(sum[:])
}

func TestSignRequestMatchesReference(t *testing.T) {
	t.Parallel()
	in := url.Values{"info": {"user_count"}, "Filter_By_Prefix": {"presence-"}}
	q := signature.SignRequest(testKey, testSecret, "get", "/apps/42/channels", in, nil, testNow)
	if len(in) != 2 {
		t.Fatalf("SignRequest modified its input: %v", in)
	}
	if q.Has("body_md5") {
		t.Fatal("body_md5 added for an empty body")
	}
	if got, want := q.Get("auth_signature"), refHMAC(testSecret, refStringToSign("GET", "/apps/42/channels", q)); got != want {
		t.Fatalf("auth_signature = %s, want %s", got, want)
	}
	if q.Get("auth_timestamp") != "1700000000" || q.Get("auth_version") != "1.0" || q.Get("auth_key") != testKey {
		t.Fatalf("auth params = %v", q)
	}
}

func TestSignRequestReplacesReservedParams(t *testing.T) {
	t.Parallel()
	in := url.Values{"auth_signature": {"old"}, "AUTH_KEY": {"other"}, "body_md5": {"x"}, "auth_timestamp": {"1"}}
	q := signature.SignRequest(testKey, testSecret, "POST", testPath, in, []byte(testBody), testNow)
	if q.Has("AUTH_KEY") || q.Get("auth_timestamp") != "1700000000" || q.Get("body_md5") != md5Hex(testBody) {
		t.Fatalf("reserved params not replaced: %v", q)
	}
	if err := signature.VerifyRequest(testKey, testSecret, "POST", testPath, q, []byte(testBody), testNow, 0); err != nil {
		t.Fatal(err)
	}
}

// TestNodeSDKRequest verifies a request built the way the npm "pusher"
// package (lib/requests.js createSignedQueryString) builds one: params in an
// object, keys sorted, values written raw into both the signed string and the
// URL, the path as sent, body_md5 for a body.
func TestNodeSDKRequest(t *testing.T) {
	t.Parallel()
	ts := strconv.FormatInt(testNow.Unix(), 10)
	build := func(method, path, body string, extra [][2]string) string {
		params := [][2]string{{"auth_key", testKey}, {"auth_timestamp", ts}, {"auth_version", "1.0"}}
		if body != "" {
			params = append(params, [2]string{"body_md5", md5Hex(body)})
		}
		params = append(params, extra...)
		sort.Slice(params, func(i, j int) bool { return params[i][0] < params[j][0] })
		var kv []string
		for _, p := range params {
			kv = append(kv, p[0]+"="+p[1])
		}
		qs := strings.Join(kv, "&")
		return qs + "&auth_signature=" + refHMAC(testSecret, method+"\n"+path+"\n"+qs)
	}
	tests := []struct {
		name, method, path, body string
		extra                    [][2]string
	}{
		{"trigger", "POST", "/apps/42/events", testBody, nil},
		{"batch", "POST", "/apps/42/batch_events", `{"batch":[{"channel":"a","name":"b","data":"c"}]}`, nil},
		{"channels", "GET", "/apps/42/channels", "", [][2]string{{"filter_by_prefix", "presence-"}, {"info", "user_count"}}},
		{"channel", "GET", "/apps/42/channels/presence-room@1,x=y;z", "", [][2]string{{"info", "user_count,subscription_count"}}},
		{"users", "GET", "/apps/42/channels/presence-room/users", "", nil},
		{"terminate", "POST", "/apps/42/users/u1/terminate_connections", "{}", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			q, err := url.ParseQuery(build(tt.method, tt.path, tt.body, tt.extra))
			if err != nil {
				t.Fatal(err)
			}
			if err := signature.VerifyRequest(testKey, testSecret, tt.method, tt.path, q, []byte(tt.body), testNow, 0); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestPHPSDKRequest verifies the shape Laravel's pusher-php-server sends:
// signed over raw values, but the URL built by http_build_query, so values
// arrive percent-encoded.
func TestPHPSDKRequest(t *testing.T) {
	t.Parallel()
	ts := strconv.FormatInt(testNow.Unix(), 10)
	const path = "/apps/42/channels"
	signed := "auth_key=" + testKey + "&auth_timestamp=" + ts + "&auth_version=1.0&filter_by_prefix=presence-&info=user_count,subscription_count"
	sig := refHMAC(testSecret, "GET\n"+path+"\n"+signed)
	wire := "auth_key=" + testKey + "&auth_timestamp=" + ts + "&auth_version=1.0&filter_by_prefix=presence-&info=user_count%2Csubscription_count&auth_signature=" + sig
	q, err := url.ParseQuery(wire)
	if err != nil {
		t.Fatal(err)
	}
	if err := signature.VerifyRequest(testKey, testSecret, "GET", path, q, nil, testNow, 0); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyRequestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, body := range []string{"", testBody} {
		for _, method := range []string{"GET", "POST", "post"} {
			q := signature.SignRequest(testKey, testSecret, method, testPath, url.Values{"socket_id": {"1.2"}}, []byte(body), testNow)
			wire, err := url.ParseQuery(q.Encode())
			if err != nil {
				t.Fatal(err)
			}
			if err := signature.VerifyRequest(testKey, testSecret, method, testPath, wire, []byte(body), testNow, 0); err != nil {
				t.Errorf("%s with %d-byte body: %v", method, len(body), err)
			}
		}
	}
}

func TestVerifyRequestFailures(t *testing.T) {
	t.Parallel()
	type req struct {
		key, secret, method, path string
		q                         url.Values
		body                      string
		now                       time.Time
	}
	// valid returns a freshly signed POST; each case breaks one thing.
	valid := func() req {
		q := signature.SignRequest(testKey, testSecret, "POST", testPath, url.Values{"socket_id": {"1.2"}}, []byte(testBody), testNow)
		return req{testKey, testSecret, "POST", testPath, q, testBody, testNow}
	}
	// edit changes the query and signs it again, so the check under test is
	// the one that fails, not the signature.
	edit := func(f func(url.Values)) func(*req) {
		return func(r *req) { f(r.q); resign(testSecret, r.method, r.path, r.q) }
	}
	tests := []struct {
		name   string
		change func(*req)
		want   error // nil: must verify
	}{
		{"valid", func(*req) {}, nil},
		{"uppercase keys", edit(func(q url.Values) {
			v := q.Get("auth_key")
			q.Del("auth_key")
			q.Set("AUTH_KEY", v)
		}), nil},
		{"skew exactly 600 s behind", func(r *req) { r.now = testNow.Add(600 * time.Second) }, nil},
		{"skew exactly 600 s ahead", func(r *req) { r.now = testNow.Add(-600 * time.Second) }, nil},
		{"empty body with md5 of empty", func(r *req) {
			r.body = ""
			edit(func(q url.Values) { q.Set("body_md5", md5Hex("")) })(r)
		}, nil},
		{"empty body without body_md5", func(r *req) {
			r.body = ""
			edit(func(q url.Values) { q.Del("body_md5") })(r)
		}, nil},

		{"wrong key", func(r *req) { r.key = "other-key" }, signature.ErrUnknownKey},
		{"missing auth_key", edit(func(q url.Values) { q.Del("auth_key") }), signature.ErrUnknownKey},
		{"missing auth_version", edit(func(q url.Values) { q.Del("auth_version") }), signature.ErrAuthVersion},
		{"auth_version 2.0", edit(func(q url.Values) { q.Set("auth_version", "2.0") }), signature.ErrAuthVersion},
		{"stale, client behind", func(r *req) { r.now = testNow.Add(601 * time.Second) }, signature.ErrStaleTimestamp},
		{"stale, client ahead", func(r *req) { r.now = testNow.Add(-601 * time.Second) }, signature.ErrStaleTimestamp},
		{"missing auth_timestamp", edit(func(q url.Values) { q.Del("auth_timestamp") }), signature.ErrStaleTimestamp},
		{"fractional timestamp", edit(func(q url.Values) { q.Set("auth_timestamp", "1700000000.5") }), signature.ErrStaleTimestamp},
		{"non-integer timestamp", edit(func(q url.Values) { q.Set("auth_timestamp", "yesterday") }), signature.ErrStaleTimestamp},
		{"max int64 timestamp", edit(func(q url.Values) { q.Set("auth_timestamp", "9223372036854775807") }), signature.ErrStaleTimestamp},
		{"min int64 timestamp", edit(func(q url.Values) { q.Set("auth_timestamp", "-9223372036854775808") }), signature.ErrStaleTimestamp},
		{"wrong secret", func(r *req) { r.secret = "other-secret" }, signature.ErrSignature},
		{"missing auth_signature", func(r *req) { r.q.Del("auth_signature") }, signature.ErrSignature},
		{"uppercase signature", func(r *req) { r.q.Set("auth_signature", strings.ToUpper(r.q.Get("auth_signature"))) }, signature.ErrSignature},
		{"param changed", func(r *req) { r.q.Set("socket_id", "1.3") }, signature.ErrSignature},
		{"param added", func(r *req) { r.q.Set("info", "x") }, signature.ErrSignature},
		{"param removed", func(r *req) { r.q.Del("socket_id") }, signature.ErrSignature},
		{"body_md5 removed", func(r *req) { r.q.Del("body_md5") }, signature.ErrSignature},
		{"method changed", func(r *req) { r.method = "GET" }, signature.ErrSignature},
		{"path changed", func(r *req) { r.path = "/apps/43/events" }, signature.ErrSignature},
		{"path decoded", func(r *req) { r.path = "/apps/42/%65vents" }, signature.ErrSignature},
		{"body tampered", func(r *req) { r.body = strings.Replace(testBody, "ping", "pong", 1) }, signature.ErrBodyMD5},
		{"body dropped", func(r *req) { r.body = "" }, signature.ErrBodyMD5},
		{"body_md5 missing for a body", edit(func(q url.Values) { q.Del("body_md5") }), signature.ErrBodyMD5},
		{"wrong body_md5 for an empty body", func(r *req) {
			r.body = ""
			edit(func(q url.Values) { q.Set("body_md5", md5Hex("x")) })(r)
		}, signature.ErrBodyMD5},
		{"repeated param", edit(func(q url.Values) { q.Add("socket_id", "1.3") }), signature.ErrBadRequest},
		{"keys differing in case", edit(func(q url.Values) { q.Set("Socket_ID", "1.2") }), signature.ErrBadRequest},
		{"'&' in a value", edit(func(q url.Values) { q.Set("socket_id", "1.2&info=x") }), signature.ErrBadRequest},
		{"'=' in a key", edit(func(q url.Values) { q.Set("a=b", "c") }), signature.ErrBadRequest},
		{"newline in path", func(r *req) { r.path = "/apps/42\n/events" }, signature.ErrBadRequest},
	}
	sentinels := []error{signature.ErrBadRequest, signature.ErrUnknownKey, signature.ErrAuthVersion,
		signature.ErrStaleTimestamp, signature.ErrBodyMD5, signature.ErrSignature}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := valid()
			tt.change(&r)
			err := signature.VerifyRequest(r.key, r.secret, r.method, r.path, r.q, []byte(r.body), r.now, signature.MaxSkew)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			for _, s := range sentinels {
				if s != tt.want && errors.Is(err, s) {
					t.Fatalf("err %v also matches %v", err, s)
				}
			}
			// Echoing the caller's own auth_signature reveals nothing, even
			// when it is right and the key is what is wrong.
			if expected := refHMAC(r.secret, refStringToSign(r.method, r.path, r.q)); expected != r.q.Get("auth_signature") && strings.Contains(err.Error(), expected) {
				t.Fatalf("error reveals the expected signature: %v", err)
			}
		})
	}
}

func TestVerifyRequestMessages(t *testing.T) {
	t.Parallel()
	q := signature.SignRequest(docKey, docSecret, "POST", "/apps/3/events", nil, []byte(docBody), time.Unix(docTimestamp, 0))
	tests := []struct {
		now  time.Time
		body string
		want string
	}{
		{time.Unix(docTimestamp+912, 0), docBody, "auth_timestamp 1353088179 is 912 s away from server time 1353089091 (limit 600 s)"},
		{time.Unix(docTimestamp-700, 0), docBody, "auth_timestamp 1353088179 is 700 s away from server time 1353087479 (limit 600 s)"},
		{time.Unix(docTimestamp, 0), "{}", `body_md5 "ec365a775a4cd0599faeb73354201b6f" is not the MD5 of the 2-byte body`},
	}
	for _, tt := range tests {
		err := signature.VerifyRequest(docKey, docSecret, "POST", "/apps/3/events", q, []byte(tt.body), tt.now, 0)
		if err == nil || err.Error() != tt.want {
			t.Errorf("err = %v\nwant %s", err, tt.want)
		}
	}
	err := signature.VerifyRequest(docKey, "wrong", "POST", "/apps/3/events", q, []byte(docBody), time.Unix(docTimestamp, 0), 0)
	want := fmt.Sprintf(`Invalid signature: you should have sent HmacSHA256Hex("POST\n/apps/3/events\nauth_key=%s&auth_timestamp=1353088179&auth_version=1.0&body_md5=%s", your_secret_key), but you sent "%s"`, docKey, docBodyMD5, docRESTSig)
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
}

func TestVerifyRequestCustomSkew(t *testing.T) {
	t.Parallel()
	q := signature.SignRequest(testKey, testSecret, "GET", "/apps/42/channels", nil, nil, testNow)
	later := testNow.Add(30 * time.Second)
	if err := signature.VerifyRequest(testKey, testSecret, "GET", "/apps/42/channels", q, nil, later, 10*time.Second); !errors.Is(err, signature.ErrStaleTimestamp) {
		t.Fatalf("30 s with a 10 s limit: %v", err)
	}
	if err := signature.VerifyRequest(testKey, testSecret, "GET", "/apps/42/channels", q, nil, later, 0); err != nil {
		t.Fatalf("30 s with the default limit: %v", err)
	}
}

// A server can check everything but body_md5 before reading the body, then
// the body: together the two are VerifyRequest.
func TestVerifyRequestHeadThenBody(t *testing.T) {
	t.Parallel()
	q := signature.SignRequest(testKey, testSecret, "POST", testPath, nil, []byte(testBody), testNow)
	if err := signature.VerifyRequestHead(testKey, testSecret, "POST", testPath, q, testNow, 0); err != nil {
		t.Fatalf("head: %v", err)
	}
	if err := signature.VerifyBodyMD5(q, []byte(testBody)); err != nil {
		t.Fatalf("body: %v", err)
	}
	if err := signature.VerifyBodyMD5(q, []byte(`{}`)); !errors.Is(err, signature.ErrBodyMD5) {
		t.Fatalf("tampered body: %v", err)
	}
	if err := signature.VerifyRequestHead(testKey, "other", "POST", testPath, q, testNow, 0); !errors.Is(err, signature.ErrSignature) {
		t.Fatalf("head with another secret: %v", err)
	}
}

// The checks that need no credentials come first, and a wrong key reads
// exactly as a wrong secret: nothing in an answer tells a caller without
// the credentials whether the key, the secret or the app was wrong.
func TestWrongCredentialsReadAlike(t *testing.T) {
	t.Parallel()
	signed := func(key string, now time.Time) url.Values {
		return signature.SignRequest(key, testSecret, "POST", testPath, nil, []byte(testBody), now)
	}
	cases := []struct {
		name string
		q    url.Values
		want error
	}{
		{"fresh", signed(testKey, testNow), signature.ErrSignature},
		{"another key", signed("other-key", testNow), signature.ErrSignature},
		{"stale", signed("other-key", testNow.Add(-time.Hour)), signature.ErrStaleTimestamp},
		{"unsigned", url.Values{"auth_key": {"k"}, "auth_timestamp": {"1700000000"}, "auth_version": {"1.0"}}, signature.ErrSignature},
		{"ambiguous", url.Values{"a": {"1&b=2"}}, signature.ErrBadRequest},
	}
	for _, c := range cases {
		wrongSecret := signature.VerifyRequestHead(testKey, "not-the-secret", "POST", testPath, c.q, testNow, 0)
		wrongKey := signature.VerifyRequestHead("not-the-key", testSecret, "POST", testPath, c.q, testNow, 0)
		noApp := signature.RefuseRequest("POST", testPath, c.q, testNow, 0)
		if !errors.Is(noApp, c.want) || wrongSecret == nil || wrongKey == nil ||
			noApp.Error() != wrongSecret.Error() || noApp.Error() != wrongKey.Error() {
			t.Errorf("%s: want %v, the same message thrice:\n no app:       %v\n wrong secret: %v\n wrong key:    %v", c.name, c.want, noApp, wrongSecret, wrongKey)
		}
	}
}
