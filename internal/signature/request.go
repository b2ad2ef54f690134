package signature

import (
	"crypto/md5"
	"encoding/hex"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// AuthVersion is the only auth_version Pusher's HTTP API defines.
const AuthVersion = "1.0"

// MaxSkew is how far auth_timestamp may be from the server's clock, either
// way, as Pusher allows.
const MaxSkew = 600 * time.Second

// The query parameters the signing scheme owns. A caller's own parameters
// cannot use these names: SignRequest replaces them.
const (
	paramKey       = "auth_key"
	paramTimestamp = "auth_timestamp"
	paramVersion   = "auth_version"
	paramSignature = "auth_signature"
	paramBodyMD5   = "body_md5"
)

// emptyMD5 is hex md5(""): the only body_md5 an empty body may carry.
const emptyMD5 = "d41d8cd98f00b204e9800998ecf8427e"

// SignRequest signs an HTTP API request the way Pusher's server SDKs do and
// returns the query to send: a copy of query (left unchanged) with auth_key,
// auth_timestamp (now, in Unix seconds), auth_version=1.0, body_md5 when body
// is non-empty, and auth_signature set, replacing any already there. path is
// the path exactly as it will go on the wire, e.g. "/apps/3/events".
//
// A query VerifyRequest would refuse as ErrBadRequest (a repeated parameter,
// say) is signed all the same, and will still be refused.
func SignRequest(key, secret, method, path string, query url.Values, body []byte, now time.Time) url.Values {
	out := make(url.Values, len(query)+5)
	for k, vs := range query {
		if !isReserved(strings.ToLower(k)) {
			out[k] = slices.Clone(vs)
		}
	}
	out.Set(paramKey, key)
	out.Set(paramTimestamp, strconv.FormatInt(now.Unix(), 10))
	out.Set(paramVersion, AuthVersion)
	if len(body) > 0 {
		out.Set(paramBodyMD5, bodyMD5(body))
	}
	params, _ := collect(out) // signed as given; see the doc comment
	out.Set(paramSignature, Sign(secret, stringToSign(method, path, params)))
	return out
}

// VerifyRequest checks an HTTP API request as Pusher does, for an app already
// found by its auth_key. method is the request method, path the path as sent
// (no decoding: it is what the client signed), query the decoded query
// parameters and body the raw body. maxSkew <= 0 means MaxSkew.
//
// The checks run in this order, each failure wrapping its sentinel:
//   - the query can be signed unambiguously, else ErrBadRequest;
//   - auth_key is present, else ErrUnknownKey;
//   - auth_version is "1.0", else ErrAuthVersion;
//   - auth_timestamp is an integer within maxSkew of now, else ErrStaleTimestamp;
//   - auth_signature is present, else ErrSignature;
//   - auth_key equals key, else ErrUnknownKey;
//   - auth_signature is the HMAC of "METHOD\npath\nquery", else ErrSignature;
//   - body_md5 is hex md5(body), else ErrBodyMD5.
//
// The checks that need neither the app's key nor its secret come first, and
// a wrong key reads exactly as a wrong signature (the sentinels differ, the
// messages do not): to a caller without the credentials an app with another
// key, an app with another secret and, through RefuseRequest, an app that
// does not exist all look the same.
//
// The signed query is every parameter but auth_signature, keys lowercased,
// sorted by key, written k=v (values not URL-encoded) and joined with "&".
// That form is ambiguous when a key holds "&" or "=" or a value holds "&"
// (key "a", value "1&b=2" and keys a and b sign the same), so such queries are
// refused as ErrBadRequest rather than letting one signature cover two
// requests; no SDK sends them.
//
// The signature is checked before the body, so a caller without the secret
// learns only that the signature is wrong; a server that must not read the
// body of an unauthenticated request calls VerifyRequestHead, then reads the
// body and calls VerifyBodyMD5. body_md5 must be present for a non-empty body;
// for an empty body it may be absent, or must be md5(""), which is what an SDK
// that hashes every POST body sends.
func VerifyRequest(key, secret, method, path string, query url.Values, body []byte, now time.Time, maxSkew time.Duration) error {
	params, err := verifyHead(key, secret, true, method, path, query, now, maxSkew)
	if err != nil {
		return err
	}
	return checkBody(params, body)
}

// VerifyRequestHead runs every check of VerifyRequest but the last, body_md5,
// which needs the body. body_md5 is part of the signed query, so a request
// that passes has a body only its signer could have hashed, and the body is
// worth reading: VerifyBodyMD5 then completes the check.
func VerifyRequestHead(key, secret, method, path string, query url.Values, now time.Time, maxSkew time.Duration) error {
	_, err := verifyHead(key, secret, true, method, path, query, now, maxSkew)
	return err
}

// VerifyBodyMD5 is VerifyRequest's last check, for a request that passed
// VerifyRequestHead: body_md5 in query is hex md5(body), else ErrBodyMD5.
func VerifyBodyMD5(query url.Values, body []byte) error {
	params, err := collect(query)
	if err != nil {
		return err
	}
	return checkBody(params, body)
}

// RefuseRequest answers a request to an app that does not exist exactly as
// VerifyRequestHead answers it for an app that does but whose credentials
// the caller lacks: it runs the same checks in the same order, does the same
// work (an HMAC included) and then fails as a wrong signature does, with the
// same message. The error wraps ErrSignature, or the sentinel of an earlier
// check. A server that answers unknown apps this way cannot be asked which
// app ids exist.
func RefuseRequest(method, path string, query url.Values, now time.Time, maxSkew time.Duration) error {
	_, err := verifyHead("", refusalSecret, false, method, path, query, now, maxSkew)
	return err
}

// refusalSecret keys the HMAC RefuseRequest computes only so that it takes
// as long as a real check; the result is never compared.
const refusalSecret = "herald: no such app"

// verifyHead runs the checks of VerifyRequestHead and returns the collected
// parameters. When exists is false there is no app: the credential checks
// fail whatever the request holds.
func verifyHead(key, secret string, exists bool, method, path string, query url.Values, now time.Time, maxSkew time.Duration) ([]param, error) {
	if maxSkew <= 0 {
		maxSkew = MaxSkew
	}
	params, err := collect(query)
	if err != nil {
		return nil, err
	}
	if strings.ContainsAny(method, "\n\r") || strings.ContainsAny(path, "\n\r") {
		return nil, fail(ErrBadRequest, "the method and path of a signed request cannot contain a newline")
	}
	gotKey, ok := lookup(params, paramKey)
	if !ok {
		return nil, fail(ErrUnknownKey, "auth_key missing")
	}
	if v, ok := lookup(params, paramVersion); !ok || v != AuthVersion {
		return nil, fail(ErrAuthVersion, "auth_version %s is not supported; use %q", describe(v, ok), AuthVersion)
	}
	if err := checkTimestamp(params, now, maxSkew); err != nil {
		return nil, err
	}
	if err := checkCredentials(key, secret, exists, gotKey, method, path, params); err != nil {
		return nil, err
	}
	return params, nil
}

// checkCredentials checks auth_key and auth_signature, doing the same work
// whichever is wrong and answering both with one message, so that neither
// the answer nor its timing tells a wrong key from a wrong secret.
func checkCredentials(key, secret string, exists bool, gotKey, method, path string, params []param) error {
	got, ok := lookup(params, paramSignature)
	if !ok {
		return fail(ErrSignature, "auth_signature missing")
	}
	msg := stringToSign(method, path, params)
	sigOK := Equal(got, Sign(secret, msg))
	keyOK := Equal(gotKey, key)
	if exists && keyOK && sigOK {
		return nil
	}
	kind := ErrSignature
	if exists && !keyOK {
		kind = ErrUnknownKey
	}
	return fail(kind, "Invalid signature: you should have sent HmacSHA256Hex(%q, your_secret_key), but you sent %s", msg, clip(got))
}

func checkTimestamp(params []param, now time.Time, maxSkew time.Duration) error {
	v, ok := lookup(params, paramTimestamp)
	if !ok {
		return fail(ErrStaleTimestamp, "auth_timestamp missing")
	}
	ts, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return fail(ErrStaleTimestamp, "auth_timestamp %s is not an integer number of seconds", clip(v))
	}
	limit := int64(maxSkew / time.Second)
	server := now.Unix()
	// Compare without subtracting, which overflows for a hostile timestamp
	// near the int64 limits; server ± limit is a real date and cannot.
	if ts >= server-limit && ts <= server+limit {
		return nil
	}
	var dist uint64 // exact even when ts-server overflows int64
	if ts > server {
		dist = uint64(ts) - uint64(server)
	} else {
		dist = uint64(server) - uint64(ts)
	}
	return fail(ErrStaleTimestamp, "auth_timestamp %d is %d s away from server time %d (limit %d s)", ts, dist, server, limit)
}

func checkBody(params []param, body []byte) error {
	got, ok := lookup(params, paramBodyMD5)
	want := emptyMD5
	if len(body) > 0 {
		if !ok {
			return fail(ErrBodyMD5, "body_md5 missing for a %d-byte body", len(body))
		}
		want = bodyMD5(body)
	} else if !ok {
		return nil
	}
	if !strings.EqualFold(got, want) {
		return fail(ErrBodyMD5, "body_md5 %s is not the MD5 of the %d-byte body", clip(got), len(body))
	}
	return nil
}

// param is one query parameter as signed: key lowercased, one value.
type param struct{ key, value string }

// collect returns the query's parameters sorted by lowercased key (then by
// value, so the order never depends on map iteration). It refuses
// (ErrBadRequest) what cannot be signed unambiguously, but still returns every
// value so SignRequest can sign whatever it was given.
func collect(q url.Values) ([]param, error) {
	params := make([]param, 0, len(q))
	for k, vs := range q {
		lk := strings.ToLower(k)
		for _, v := range vs {
			params = append(params, param{lk, v})
		}
	}
	slices.SortFunc(params, func(a, b param) int {
		if c := strings.Compare(a.key, b.key); c != 0 {
			return c
		}
		return strings.Compare(a.value, b.value)
	})
	for i, p := range params {
		switch {
		case i > 0 && p.key == params[i-1].key:
			return params, fail(ErrBadRequest, "query parameter %s is given more than once (names are compared lowercased); a signed request takes each parameter once", clip(p.key))
		case strings.ContainsAny(p.key, "&="):
			return params, fail(ErrBadRequest, "query parameter name %s contains '&' or '=', which the signature cannot tell apart", clip(p.key))
		case strings.Contains(p.value, "&"):
			return params, fail(ErrBadRequest, "query parameter %s has a value containing '&', which the signature cannot tell apart", clip(p.key))
		}
	}
	return params, nil
}

// lookup returns the value of a lowercase key from sorted params.
func lookup(params []param, key string) (string, bool) {
	i, ok := slices.BinarySearchFunc(params, key, func(p param, k string) int { return strings.Compare(p.key, k) })
	if !ok {
		return "", false
	}
	return params[i].value, true
}

// stringToSign is "METHOD\npath\nk=v&k=v…" over every parameter but
// auth_signature, params sorted by key.
func stringToSign(method, path string, params []param) string {
	n := len(method) + len(path) + 2
	for _, p := range params {
		n += len(p.key) + len(p.value) + 2
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(strings.ToUpper(method))
	b.WriteByte('\n')
	b.WriteString(path)
	b.WriteByte('\n')
	first := true
	for _, p := range params {
		if p.key == paramSignature {
			continue
		}
		if !first {
			b.WriteByte('&')
		}
		first = false
		b.WriteString(p.key)
		b.WriteByte('=')
		b.WriteString(p.value)
	}
	return b.String()
}

func isReserved(lowerKey string) bool {
	switch lowerKey {
	case paramKey, paramTimestamp, paramVersion, paramSignature, paramBodyMD5:
		return true
	}
	return false
}

func bodyMD5(body []byte) string {
	sum := md5.Sum(body)
	return hex.EncodeToString(sum[:])
}

// describe renders an optional parameter for a message.
func describe(v string, ok bool) string {
	if !ok {
		return "(missing)"
	}
	return clip(v)
}
