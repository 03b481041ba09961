package ecardbot

import "context"

// SettingsPage names a settings page that a link from chat can open. Links open only these
// pages, so a link can never send a parent anywhere else.
type SettingsPage string

// The settings pages reachable from chat.
const (
	SettingsHome     SettingsPage = ""             // the guardian's children and their notices
	SettingsAddChild SettingsPage = "children/new" // 歸戶: prove guardianship of a child
	SettingsHistory  SettingsPage = "history"      // recent notices and their delivery state
)

// SettingsLinker makes the short-lived, single-use signed URLs with which a linked guardian
// opens their settings pages from chat (design.md §2.3). The bot sends them; the settings pages
// consume them and start a session.
type SettingsLinker interface {
	SettingsURL(ctx context.Context, guardianID int64, page SettingsPage) (string, error)
}
