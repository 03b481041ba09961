package school

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"

	"github.com/taipei-doit/ecardbot"
)

// KeyPrefix starts every gate API key, so a key pasted into a ticket or committed to a repository
// is recognisable (and findable by secret scanners) as ours.
const KeyPrefix = "gk_"

// NewKey returns a new gate API key, 32 random bytes in unpadded base64url after KeyPrefix, and
// the keyed hash under secret that is the only thing stored: the key itself is shown once to the
// operator and cannot be recovered from the database.
func NewKey(secret []byte) (key, hash string, err error) {
	if len(secret) == 0 {
		return "", "", fmt.Errorf("new gate API key: no secret key to hash it with")
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("new gate API key: %w", err)
	}
	key = KeyPrefix + base64.RawURLEncoding.EncodeToString(b)
	return key, KeyHash(secret, key), nil
}

// KeyHash is the stored form of a gate API key: what AddAPIKey stores and AuthenticateSchool
// looks up.
func KeyHash(secret []byte, key string) string {
	return ecardbot.KeyedHash(secret, ecardbot.PurposeGateKey, key)
}
