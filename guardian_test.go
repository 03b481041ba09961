package ecardbot_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/taipei-doit/ecardbot"
)

func TestValidateEmail(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"a@example.com":                "a@example.com",
		" a.b+c@mail.gov.tw ":          "a.b+c@mail.gov.tw",
		"parent@example.com.tw":        "parent@example.com.tw",
		"":                             "",
		"a@b":                          "",
		"a@.com":                       "",
		"a@example.":                   "",
		"<a@example.com>":              "",
		"A <a@example.com>":            "",
		"a@example.com, b@example.com": "",
		"a@@example.com":               "",
		"no-at-sign":                   "",
		strings.Repeat("a", 250) + "@example.com": "",
	} {
		got, err := ecardbot.ValidateEmail(in)
		switch {
		case want == "" && ecardbot.ErrorCode(err) != ecardbot.EINVALID:
			t.Errorf("ValidateEmail(%q) = %q, %v; want EINVALID", in, got, err)
		case want == "" && in != "" && strings.Contains(ecardbot.ErrorMessage(err), in):
			t.Errorf("ValidateEmail(%q): the message quotes the address", in)
		case want != "" && (err != nil || got != want):
			t.Errorf("ValidateEmail(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestValidLineUserID(t *testing.T) {
	t.Parallel()
	for id, want := range map[string]bool{
		"U4af4980629a0b1c2d3e4f5a6b7c8d9e0":  true,
		"U4AF4980629A0B1C2D3E4F5A6B7C8D9E0":  false, // LINE IDs are lower-case
		"u4af4980629a0b1c2d3e4f5a6b7c8d9e0":  false,
		"U4af4980629a0b1c2d3e4f5a6b7c8d9e":   false,
		"U4af4980629a0b1c2d3e4f5a6b7c8d9e00": false,
		"C4af4980629a0b1c2d3e4f5a6b7c8d9e0":  false, // a group
		"U4af4980629a0b1c2d3e4f5a6b7c8d9eg":  false,
		"":                                   false,
	} {
		if got := ecardbot.ValidLineUserID(id); got != want {
			t.Errorf("ValidLineUserID(%q) = %v, want %v", id, got, want)
		}
	}
}

func TestImportError(t *testing.T) {
	t.Parallel()
	one := &ecardbot.ImportError{Total: 1, Entries: []ecardbot.EntryError{{Line: 4, Code: ecardbot.ECONFLICT, Message: "taken"}}}
	if got := one.Error(); got != "line 4: taken" {
		t.Errorf("Error() = %q", got)
	}
	if ecardbot.ErrorCode(one) != ecardbot.ECONFLICT || ecardbot.ErrorMessage(one) != "line 4: taken" {
		t.Errorf("code %q, message %q", ecardbot.ErrorCode(one), ecardbot.ErrorMessage(one))
	}
	two := &ecardbot.ImportError{Total: 7, Entries: []ecardbot.EntryError{{Line: 2, Code: ecardbot.EINVALID, Message: "bad"}}}
	wrapped := errors.Join(errors.New("context"), two)
	if ecardbot.ErrorCode(wrapped) != ecardbot.EINVALID || ecardbot.ErrorMessage(wrapped) != "7 bad lines, the first: line 2: bad" {
		t.Errorf("wrapped: code %q, message %q", ecardbot.ErrorCode(wrapped), ecardbot.ErrorMessage(wrapped))
	}
}
