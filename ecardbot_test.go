package ecardbot_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/taipei-doit/ecardbot"
)

func TestLanguageOf(t *testing.T) {
	tests := []struct {
		tag, want string
	}{
		{"en", ecardbot.LangEn},
		{"en-US", ecardbot.LangEn},
		{"en-GB", ecardbot.LangEn},
		{"zh-TW", ecardbot.LangZhTW},
		{"zh-Hant-TW", ecardbot.LangZhTW},
		{"ja", ecardbot.LangZhTW},
		{"eng", ecardbot.LangZhTW},
		{"", ecardbot.LangZhTW},
	}
	for _, tt := range tests {
		t.Run(tt.tag, func(t *testing.T) {
			if got := ecardbot.LanguageOf(tt.tag); got != tt.want {
				t.Errorf("LanguageOf(%q) = %q, want %q", tt.tag, got, tt.want)
			}
		})
	}
}

func TestErrorCodeAndMessage(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantCode string
		wantMsg  string
	}{
		{name: "nil", err: nil, wantCode: "", wantMsg: ""},
		{name: "application error", err: ecardbot.Errorf(ecardbot.ENOTFOUND, "No user %s.", "U1"), wantCode: ecardbot.ENOTFOUND, wantMsg: "No user U1."},
		{name: "wrapped application error", err: fmt.Errorf("find user: %w", ecardbot.Errorf(ecardbot.ECONFLICT, "Taken.")), wantCode: ecardbot.ECONFLICT, wantMsg: "Taken."},
		{name: "internal error hides its text", err: errors.New("pq: password authentication failed"), wantCode: ecardbot.EINTERNAL, wantMsg: "Internal error."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ecardbot.ErrorCode(tt.err); got != tt.wantCode {
				t.Errorf("ErrorCode = %q, want %q", got, tt.wantCode)
			}
			if got := ecardbot.ErrorMessage(tt.err); got != tt.wantMsg {
				t.Errorf("ErrorMessage = %q, want %q", got, tt.wantMsg)
			}
		})
	}
}
