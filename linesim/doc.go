// Package linesim emulates the outside systems ecardbot talks to, so it can be tested, tried by
// hand (ecardbot sandbox) and benchmarked without them: the LINE platform (Server) and a school's
// gate readers (GateReader, GenerateDay in gatereader.go).
//
// One Server plays both sides of LINE:
//
//   - The Messaging API (api.line.me and api-data.line.me on one URL): reply, push, multicast,
//     broadcast, profiles, link tokens, quota and rich menus, with LINE's limits, error bodies,
//     retry keys, token-bucket rate limits and monthly quota. Every API request is recorded, and
//     faults (5xx, either 429, slow answers) can be injected per path.
//   - The webhook sender: it builds events the way LINE does (webhookEventId, reply tokens,
//     deliveryContext), signs them with the channel secret and POSTs them to the bot, optionally
//     redelivering after a failure.
//
// Between the two it keeps LINE users: whether they are friends, what the bot sent them (the
// inbox), their rich menus and link tokens. The chat page at "/" lets a person play such a user,
// and the account-link dialog at /dialog/bot/accountLink stands in for access.line.me.
//
// TaipeiPass (taipeipass.go) stands in for the city's TaipeiPASS member service at
// https://id.taipei/tpcd, whose login no test can use: an OAuth 2.0 authorization-code server
// with a phone-sized login page where a person picks or types a member (gold, or ordinary with
// verifyLevel "0"), 6-character single-use codes, client authentication, PKCE S256 when a
// challenge was sent, and the member record at /api/v1.0.9/user/my in the real envelope. It runs
// on its own server, or next to Server on one mux since all its routes sit under /tpcd.
//
// Rules follow the LINE reference as summarised in shared/line-platform.md; where LINE documents
// no behaviour (for example the exact text of some error messages) the emulator picks one and says
// so in a comment.
package linesim
