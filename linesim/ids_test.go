package linesim

import (
	"regexp"
	"testing"
)

// TestValidUserID compares ValidUserID with the regular expression it replaced.
func TestValidUserID(t *testing.T) {
	pattern := regexp.MustCompile(`^U[0-9a-f]{32}$`)
	const id = "U0123456789abcdef0123456789abcdef"
	ids := []string{"", "U", id, NewUserID(), id + "\n", id + "0", id[:32], "u" + id[1:], id[:32] + "F", "U0123456789abcdef0123456789abcdé"}
	for c := range 256 {
		ids = append(ids, id[:32]+string([]byte{byte(c)}), string([]byte{byte(c)})+id[1:])
	}
	for _, s := range ids {
		if got, want := ValidUserID(s), pattern.MatchString(s); got != want {
			t.Errorf("ValidUserID(%q) = %v, want %v", s, got, want)
		}
	}
}
