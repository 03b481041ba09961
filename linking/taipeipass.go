package linking

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"golang.org/x/oauth2"
)

// userMyPath is the member record, under ECARDBOT_TAIPEIPASS_URL (taipei.md §1).
const userMyPath = "/api/v1.0.9/user/my"

// maxUserMyBytes caps the member record: a few addresses at most.
const maxUserMyBytes = 1 << 20

// member is the part of user/my's "data" linking reads. The record also holds the national ID,
// names and addresses: they are not decoded, so they can never be stored or logged by mistake.
type member struct {
	ID          string `json:"id"`
	VerifyLevel string `json:"verifyLevel"`
}

// login exchanges the code (with the PKCE verifier) and reads the member record.
func (s *Service) login(ctx context.Context, code, verifier string) (member, error) {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, s.http)
	tok, err := s.oauth.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			// ErrorCode is the OAuth error ("invalid_grant"); the body may quote the code.
			return member{}, fmt.Errorf("exchange code: TaipeiPASS answered %d %s", re.Response.StatusCode, re.ErrorCode)
		}
		return member{}, fmt.Errorf("exchange code: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.cfg.TaipeiPassURL+userMyPath, nil)
	if err != nil {
		return member{}, fmt.Errorf("read member: %w", err)
	}
	res, err := s.oauth.Client(ctx, tok).Do(req)
	if err != nil {
		return member{}, fmt.Errorf("read member: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return member{}, fmt.Errorf("read member: TaipeiPASS answered %d", res.StatusCode)
	}
	var env struct {
		Data member `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, maxUserMyBytes)).Decode(&env); err != nil {
		return member{}, fmt.Errorf("read member: malformed record") // json's error quotes the body
	}
	if env.Data.ID == "" {
		return member{}, fmt.Errorf("read member: record without an id")
	}
	return env.Data, nil
}
