package pusher

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Frame is one decoded client message. Data is the raw JSON value of the
// "data" field (nil when absent), kept verbatim so client events are relayed
// untouched.
type Frame struct {
	Event   string
	Channel string
	Data    json.RawMessage
}

type rawFrame struct {
	Event   *string         `json:"event"`
	Channel *string         `json:"channel"`
	Data    json.RawMessage `json:"data"`
}

// DecodeFrame parses a client WebSocket message. Errors are *Error with
// CodeGeneric and say what is wrong; they never close the connection.
func DecodeFrame(b []byte) (Frame, error) {
	var r rawFrame
	if err := json.Unmarshal(b, &r); err != nil {
		return Frame{}, Errorf(CodeGeneric, "invalid message: %s", describeJSONError(err))
	}
	if r.Event == nil || *r.Event == "" {
		return Frame{}, Errorf(CodeGeneric, "invalid message: missing \"event\"")
	}
	f := Frame{Event: *r.Event, Data: r.Data}
	if r.Channel != nil {
		f.Channel = *r.Channel
	}
	return f, nil
}

func describeJSONError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q must be a %s, not %s", te.Field, te.Type.Kind(), te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("not JSON (%s at offset %d)", se.Error(), se.Offset)
	}
	return err.Error()
}

// unwrapData accepts "data" either as a JSON object or as a string holding
// one (some clients double-encode), and returns the object's bytes.
func unwrapData(data json.RawMessage) ([]byte, error) {
	d := bytes.TrimSpace(data)
	if len(d) > 0 && d[0] == '"' {
		var s string
		if err := json.Unmarshal(d, &s); err != nil {
			return nil, err
		}
		return []byte(s), nil
	}
	return d, nil
}

// Subscribe is the data of pusher:subscribe.
type Subscribe struct {
	Channel     string `json:"channel"`
	Auth        string `json:"auth"`
	ChannelData string `json:"channel_data"`
	// Since, when not nil, asks to resume the channel after this position
	// (Herald's extension; Pusher clients never send it).
	Since *Since `json:"since,omitempty"`
	// Position asks, on a channel with history, for a herald:position
	// frame right after subscription_succeeded: where the channel is, so a
	// client can resume a quiet channel later (Herald's extension).
	Position bool `json:"position,omitempty"`
}

// Since is the position a resuming subscriber has seen up to: the
// channel's epoch and the offset of the last event it received.
type Since struct {
	Epoch  string
	Offset uint64
}

// DecodeSubscribe parses the data of pusher:subscribe / pusher:unsubscribe.
func DecodeSubscribe(data json.RawMessage) (Subscribe, error) {
	var s struct {
		Channel     *string         `json:"channel"`
		Auth        *string         `json:"auth"`
		ChannelData json.RawMessage `json:"channel_data"`
		Since       json.RawMessage `json:"since"`
		Position    bool            `json:"position"`
	}
	obj, err := unwrapData(data)
	if err != nil || len(obj) == 0 || obj[0] != '{' {
		return Subscribe{}, Errorf(CodeGeneric, "invalid subscribe data: expected an object with \"channel\"")
	}
	if err := json.Unmarshal(obj, &s); err != nil {
		return Subscribe{}, Errorf(CodeGeneric, "invalid subscribe data: %s", describeJSONError(err))
	}
	if s.Channel == nil || *s.Channel == "" {
		return Subscribe{}, Errorf(CodeGeneric, "invalid subscribe data: missing \"channel\"")
	}
	out := Subscribe{Channel: *s.Channel, Position: s.Position}
	if s.Auth != nil {
		out.Auth = *s.Auth
	}
	if sd := bytes.TrimSpace(s.Since); len(sd) > 0 && string(sd) != "null" {
		since, err := DecodeSince(sd)
		if err != nil {
			return Subscribe{}, err
		}
		out.Since = &since
	}
	if cd := bytes.TrimSpace(s.ChannelData); len(cd) > 0 && string(cd) != "null" {
		if cd[0] == '"' {
			if err := json.Unmarshal(cd, &out.ChannelData); err != nil {
				return Subscribe{}, Errorf(CodeGeneric, "invalid subscribe data: bad channel_data")
			}
		} else {
			out.ChannelData = string(cd)
		}
	}
	return out, nil
}

// DecodeSince parses a resume position, {"epoch":"…","offset":N}: the
// epoch a string, the offset an integer 0 or more. The empty epoch goes
// only with offset 0: the position of a channel without history yet.
func DecodeSince(b []byte) (Since, error) {
	var v struct {
		Epoch  *string      `json:"epoch"`
		Offset *json.Number `json:"offset"`
	}
	bad := Errorf(CodeGeneric, `invalid subscribe data: "since" must be {"epoch": string, "offset": integer ≥ 0}`)
	if len(b) == 0 || b[0] != '{' || json.Unmarshal(b, &v) != nil || v.Epoch == nil || v.Offset == nil {
		return Since{}, bad
	}
	off, err := strconv.ParseUint(v.Offset.String(), 10, 64)
	if err != nil || !validEpoch(*v.Epoch) || *v.Epoch == "" && off != 0 {
		return Since{}, bad
	}
	return Since{Epoch: *v.Epoch, Offset: off}, nil
}

// Member is one presence member.
type Member struct {
	UserID string
	Info   json.RawMessage // raw JSON, nil when absent
}

// ParseChannelData parses presence channel_data: {"user_id": "…" or number,
// "user_info": any}. Numeric ids (Laravel's default) become strings.
func ParseChannelData(s string, maxIDLen, maxInfoBytes int) (Member, error) {
	var cd struct {
		UserID   json.RawMessage `json:"user_id"`
		UserInfo json.RawMessage `json:"user_info"`
	}
	if err := json.Unmarshal([]byte(s), &cd); err != nil {
		return Member{}, Errorf(CodeUnauthorized, "invalid channel_data: %s", describeJSONError(err))
	}
	id, err := userIDString(cd.UserID)
	if err != nil {
		return Member{}, err
	}
	if len(id) > maxIDLen {
		return Member{}, Errorf(CodeUnauthorized, "invalid channel_data: user_id is %d characters long; the limit is %d", len(id), maxIDLen)
	}
	if len(cd.UserInfo) > maxInfoBytes {
		return Member{}, Errorf(CodeUnauthorized, "invalid channel_data: user_info is %d bytes; the limit is %d", len(cd.UserInfo), maxInfoBytes)
	}
	m := Member{UserID: id}
	if len(cd.UserInfo) > 0 && string(cd.UserInfo) != "null" {
		m.Info = cd.UserInfo
	}
	return m, nil
}

func userIDString(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", Errorf(CodeUnauthorized, "invalid channel_data: missing user_id")
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil || s == "" {
			return "", Errorf(CodeUnauthorized, "invalid channel_data: user_id must be a non-empty string or number")
		}
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return "", Errorf(CodeUnauthorized, "invalid channel_data: user_id must be a non-empty string or number")
	}
	return n.String(), nil
}

// Signin is the data of pusher:signin.
type Signin struct {
	Auth     string `json:"auth"`
	UserData string `json:"user_data"`
}

// User is the decoded user_data of a sign-in.
type User struct {
	ID        string
	Info      json.RawMessage
	Watchlist []string
}

// DecodeSignin parses pusher:signin data and its user_data.
func DecodeSignin(data json.RawMessage) (Signin, User, error) {
	var s Signin
	obj, err := unwrapData(data)
	if err != nil || json.Unmarshal(obj, &s) != nil || s.Auth == "" || s.UserData == "" {
		return Signin{}, User{}, Fatalf(CodeUnauthorized, "invalid signin data: expected {\"auth\": string, \"user_data\": string}")
	}
	var u struct {
		ID        json.RawMessage `json:"id"`
		UserInfo  json.RawMessage `json:"user_info"`
		Watchlist []string        `json:"watchlist"`
	}
	if err := json.Unmarshal([]byte(s.UserData), &u); err != nil {
		return Signin{}, User{}, Fatalf(CodeUnauthorized, "invalid user_data: %s", describeJSONError(err))
	}
	var id string
	if len(u.ID) > 0 && u.ID[0] == '"' {
		_ = json.Unmarshal(u.ID, &id)
	}
	if id == "" {
		return Signin{}, User{}, Fatalf(CodeUnauthorized, "invalid user_data: \"id\" must be a non-empty string")
	}
	return s, User{ID: id, Info: u.UserInfo, Watchlist: u.Watchlist}, nil
}
