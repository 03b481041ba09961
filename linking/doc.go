// Package linking links a parent's LINE user to their TaipeiPASS (臺北通) gold-member account
// (design.md §2.2):
//
//	chat "綁定" → bot issues a LINE link token → GET /link?linkToken=…
//	  → store an attempt under the hash of a random OAuth2 state (with the link token and a
//	    PKCE verifier) → 302 to TaipeiPASS /oauth/authorize (state, S256 challenge)
//	GET /link/callback?code=…&state=… → take the attempt (once, before it expires)
//	  → exchange the code with the verifier → read user/my → refuse a member who is not gold
//	  → record the account, store the hash of a fresh nonce bound to it
//	  → 302 to LINE's /dialog/bot/accountLink?linkToken=…&nonce=…
//	LINE checks that the phone's user is the token's user and sends the accountLink event
//	  → the bot calls Complete: the nonce is used up and the binding made in one transaction.
//
// Only the accountLink event binds; no browser request does. Nothing ties the callback to a
// browser cookie on purpose: TaipeiPASS may finish the login in its own app or another browser
// than LINE's, and the link token inside the attempt is already bound to one LINE user, which
// LINE's dialog enforces. The state and nonce are 256-bit random values, stored only as keyed
// hashes, single use and short-lived; every redirect is built from configuration, never from
// the request.
package linking
