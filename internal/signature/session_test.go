package signature

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSessionID(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	id := SessionID("secret", 1<<64-1, now.Add(time.Hour))
	if !regexp.MustCompile(`^\d+\.\d+$`).MatchString(id) {
		t.Fatalf("%q is not in the socket id form SDKs validate", id)
	}
	if err := VerifySessionID("secret", id, now); err != nil {
		t.Fatalf("fresh session refused: %v", err)
	}
	if err := VerifySessionID("secret", id, now.Add(time.Hour)); !errors.Is(err, ErrSessionExpired) {
		t.Errorf("expired session: %v, want ErrSessionExpired", err)
	}
	if err := VerifySessionID("other", id, now); !errors.Is(err, ErrSessionSignature) {
		t.Errorf("another app's secret: %v, want ErrSessionSignature", err)
	}
	// Every single-digit change is caught: the random part, the expiry
	// (a client extending its session) and the MAC.
	for i := range id {
		if id[i] == '.' {
			continue
		}
		b := []byte(id)
		b[i] = '0' + (b[i]-'0'+1)%10
		if err := VerifySessionID("secret", string(b), now); err == nil {
			t.Errorf("%s (digit %d changed) accepted", b, i)
		}
	}
	for _, bad := range []string{"", "1.2", "123.456", "a.b", id + "0", "." + id[len(id)-27:], "12345678901234567890." + id[len(id)-27:]} {
		if err := VerifySessionID("secret", bad, now); !errors.Is(err, ErrSessionFormat) {
			t.Errorf("%q: %v, want ErrSessionFormat", bad, err)
		}
	}
	if a, b := SessionID("s", 1, now), SessionID("s", 2, now); a == b {
		t.Error("two randoms made one id")
	}
}

func FuzzVerifySessionID(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	f.Add(SessionID("secret", 42, now.Add(time.Minute)))
	f.Add("1.2")
	f.Add("123.000000000000000000000000000")
	f.Fuzz(func(t *testing.T, id string) {
		if VerifySessionID("secret", id, now) != nil {
			return
		}
		// Accepted: it must be exactly what SessionID mints for its parts.
		r, rest, _ := strings.Cut(id, ".")
		random, err1 := strconv.ParseUint(r, 10, 64)
		exp, err2 := strconv.ParseInt(rest[:expiresDigits], 10, 64)
		if err1 != nil || err2 != nil || SessionID("secret", random, time.Unix(exp, 0)) != id {
			t.Fatalf("%q accepted but not minted by SessionID", id)
		}
	})
}
