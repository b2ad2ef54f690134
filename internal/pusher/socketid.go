package pusher

import (
	"math/rand/v2"
	"regexp"
	"strconv"
)

var socketIDPattern = regexp.MustCompile(`^\d+\.\d+$`)

// NewSocketID returns a random socket id of the documented form "123.456",
// which server SDKs validate with ^\d+\.\d+$.
func NewSocketID() string {
	b := make([]byte, 0, 24)
	b = strconv.AppendUint(b, uint64(rand.Uint32()), 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, uint64(rand.Uint32()), 10)
	return string(b)
}

// ValidSocketID reports whether id has the form "digits.digits".
func ValidSocketID(id string) bool { return len(id) <= 64 && socketIDPattern.MatchString(id) }
