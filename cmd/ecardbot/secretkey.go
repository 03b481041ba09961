package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/taipei-doit/ecardbot/config"
)

// secretKeyFile is the file in ECARDBOT_DATA_DIR that holds the secret key of a single-machine
// installation (the sandbox, or trying the operator commands next to it) when
// ECARDBOT_SECRET_KEY is not set.
const secretKeyFile = "secret.key"

// dataDirSecretKey returns the secret key kept in dataDir/secret.key, creating it on first use
// from 32 random bytes.
//
// Why a file rather than a key made up at each start: national IDs and gate API keys are
// stored as hashes keyed by it, so the sandbox, `roster import` and `school key create` must
// all use the same key across restarts, or no parent could ever match a roster line and no
// reader key would work. The key is written as base64url text with a final newline, exactly
// what config reads from ECARDBOT_SECRET_KEY_FILE, so pointing that variable at this file gives
// a PostgreSQL setup the same key. Mode 0600: whoever reads it can test IDs against the hashes.
func dataDirSecretKey(dataDir string) (string, error) {
	path := filepath.Join(dataDir, secretKeyFile)
	if key, err := readSecretKeyFile(path); !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", fmt.Errorf("create the secret key: %w", err)
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("create the secret key: %w", err)
	}
	// Written aside and linked into place: link fails when the file exists, so of a sandbox and
	// a command starting together one key wins, and no one ever reads a half-written file.
	tmp, err := os.CreateTemp(dataDir, secretKeyFile+".*")
	if err != nil {
		return "", fmt.Errorf("create the secret key: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(base64.RawURLEncoding.EncodeToString(b) + "\n")
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("create the secret key %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("create the secret key %s: %w", path, err)
	}
	return readSecretKeyFile(path)
}

// readSecretKeyFile reads a key file the way config reads ECARDBOT_SECRET_KEY_FILE.
func readSecretKeyFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read the secret key: %w", err)
	}
	key := strings.TrimRight(string(b), "\r\n")
	if len(key) < config.MinSecretKeyLen {
		return "", fmt.Errorf("secret key %s: shorter than %d bytes; delete it to make a new one (stored ID hashes and gate keys stop matching)", path, config.MinSecretKeyLen)
	}
	return key, nil
}

// commandSecretKey returns the secret key for an operator command that makes keyed hashes.
// ECARDBOT_SECRET_KEY wins and is checked as serve checks it. Without it, a command on the
// embedded SQLite database uses the sandbox's key file (dataDirSecretKey), so its hashes match
// what the sandbox computes; on PostgreSQL it refuses, because hashes made with any other key
// than the service's would silently never match.
func commandSecretKey(cfg config.Config) ([]byte, error) {
	switch {
	case cfg.SecretKey != "" && len(cfg.SecretKey) < config.MinSecretKeyLen:
		return nil, fmt.Errorf("ECARDBOT_SECRET_KEY: must be at least %d bytes, got %d", config.MinSecretKeyLen, len(cfg.SecretKey))
	case cfg.SecretKey != "":
		return []byte(cfg.SecretKey), nil
	case cfg.DatabaseURL != "":
		return nil, errors.New("ECARDBOT_SECRET_KEY: required with ECARDBOT_DATABASE_URL; use the same key as `ecardbot serve`")
	}
	key, err := dataDirSecretKey(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	return []byte(key), nil
}
