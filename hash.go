package ecardbot

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// Purposes of KeyedHash. Each keys the HMAC differently, so a hash made for one purpose is
// useless for another.
const (
	PurposeNationalID = "national-id"
	PurposeGateKey    = "gate-api-key"
)

// KeyedHash is the hex HMAC-SHA256 of value under secret and purpose. National IDs and API keys
// are stored only this way: without ECARDBOT_SECRET_KEY a stolen database does not reveal them,
// not even by trying every possible ID.
func KeyedHash(secret []byte, purpose, value string) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(purpose))
	mac.Write([]byte{0})
	mac.Write([]byte(value))
	return hex.EncodeToString(mac.Sum(nil))
}
