package linesim

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/oklog/ulid/v2"
)

// ValidUserID reports whether id has the shape of a LINE user ID: "U" and 32 lowercase hex digits.
func ValidUserID(id string) bool {
	// A loop rather than a regular expression: every push checks one, some under s.mu.
	if len(id) != 33 || id[0] != 'U' {
		return false
	}
	for _, c := range []byte(id[1:]) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// NewUserID returns a random, well-formed LINE user ID.
func NewUserID() string { return "U" + randomHex(16) }

func randomHex(nBytes int) string {
	b := make([]byte, nBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randomAlnum returns n uniformly random letters and digits.
func randomAlnum(n int) string {
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/4+8)
	for len(out) < n {
		_, _ = rand.Read(buf)
		for _, b := range buf {
			// 248 = 4·62: dropping the top bytes keeps every character equally likely.
			if b < 248 && len(out) < n {
				out = append(out, alnum[b%62])
			}
		}
	}
	return string(out)
}

// newRequestID returns a value for x-line-request-id. LINE's are UUIDs.
func newRequestID() string { return uuid.NewString() }

// newReplyToken returns a reply token: 32 lowercase hex digits, as LINE's are.
func newReplyToken() string { return randomHex(16) }

// newMessageID returns a numeric message ID of 18 digits, the shape LINE uses: 10^17 plus a
// uniform draw below 9·10^17, rejecting the 60-bit draws above it as rand.Int would.
func newMessageID() string {
	var b [8]byte
	for {
		_, _ = rand.Read(b[:])
		if n := binary.LittleEndian.Uint64(b[:]) >> 4; n < 9e17 {
			return strconv.FormatUint(n+1e17, 10)
		}
	}
}

// newQuoteToken returns an opaque quote token.
func newQuoteToken() string { return randomAlnum(64) }

// newLinkToken returns an opaque account-link token.
func newLinkToken() string { return randomAlnum(32) }

// newRichMenuID returns "richmenu-" and 32 hex digits, as LINE's rich menu IDs look.
func newRichMenuID() string { return "richmenu-" + randomHex(16) }

// newEventID returns a webhookEventId: a ULID carrying the emulated time.
func newEventID(at time.Time) string {
	return ulid.MustNew(ulid.Timestamp(at), rand.Reader).String()
}

// validRetryKey reports whether k is a UUID in the canonical hyphenated form LINE expects.
func validRetryKey(k string) bool {
	if len(k) != 36 {
		return false
	}
	_, err := uuid.Parse(k)
	return err == nil
}
