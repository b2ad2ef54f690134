package pusher

import (
	"errors"
	"strconv"
	"strings"
)

// MaxEpochLength bounds an epoch: history stores make short ones (the
// in-memory store's are about 10 characters).
const MaxEpochLength = 64

// validEpoch reports whether s can be an epoch: at most MaxEpochLength
// characters out of [A-Za-z0-9_.-], so that it needs no escaping in JSON,
// in a URL query or in an SSE id, and never contains the ':' that
// separates it from the offset there.
func validEpoch(s string) bool {
	if len(s) > MaxEpochLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// ErrSince is the error of ParseSince: what a position must look like.
var ErrSince = errors.New(`a position must be "epoch:offset" (an epoch of letters, digits, '_', '.', '-', and an offset ≥ 0; ":0" before the first event)`)

// ParseSince parses a position in its text form, "{epoch}:{offset}" — the
// since parameter of HTTP polling and an SSE event id (Last-Event-ID). The
// empty epoch goes only with offset 0 (":0"): the position of a channel
// without history yet.
func ParseSince(s string) (Since, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return Since{}, ErrSince
	}
	epoch, num := s[:i], s[i+1:]
	if num == "" || num[0] < '0' || num[0] > '9' || !validEpoch(epoch) {
		return Since{}, ErrSince
	}
	off, err := strconv.ParseUint(num, 10, 64)
	if err != nil || epoch == "" && off != 0 {
		return Since{}, ErrSince
	}
	return Since{Epoch: epoch, Offset: off}, nil
}

// String is the position's text form, "{epoch}:{offset}", which
// ParseSince reads back.
func (s Since) String() string {
	return s.Epoch + ":" + strconv.FormatUint(s.Offset, 10)
}
