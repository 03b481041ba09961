package settings

import (
	"embed"
	"fmt"
	"time"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/web"
)

//go:embed templates/*.html
var templates embed.FS

func parsePages() (*web.Pages, error) {
	return web.Parse(templates, "templates/*.html", nil)
}

// message is the text of a page that only explains something, in both languages.
type message struct {
	Title, TitleEn string
	Text, TextEn   string
	Back           bool // offer the way back to the settings page (the session still works)
}

var (
	msgBadLink = message{Title: "連結無效", TitleEn: "This link is not valid",
		Text:   "請回到 LINE 聊天室，點選選單的「通知設定」重新開啟。",
		TextEn: "Go back to the chat in LINE and tap 通知設定 (settings) in the menu to open settings again."}
	msgSpentConfirm = message{Title: "連結已使用或已過期", TitleEn: "This link was already used or has expired",
		Text:   "每個確認連結只能使用一次，且 24 小時內有效。請從 LINE 聊天室開啟「通知設定」，重新寄送確認信。",
		TextEn: "Each confirmation link works once and only for 24 hours. Open settings from the chat in LINE and send a new confirmation mail."}
	msgNoSession = message{Title: "請重新開啟設定", TitleEn: "Please open settings again",
		Text:   "設定頁已逾時。請回到 LINE 聊天室，點選選單的「通知設定」重新開啟。",
		TextEn: "Your settings session has ended. Go back to the chat in LINE and tap 通知設定 (settings) in the menu to open it again."}
	msgForbidden = message{Title: "無法執行", TitleEn: "Not allowed",
		Text: "這個動作不被允許，沒有任何變更。", TextEn: "This is not allowed; nothing was changed.", Back: true}
	msgConflict = message{Title: "資料已有變更", TitleEn: "Something changed meanwhile",
		Text:   "您的設定在這段時間已有變更，這次沒有儲存。請回到設定頁確認後再試一次。",
		TextEn: "Your settings changed meanwhile, so this was not saved. Go back to settings, check them and try again.", Back: true}
	msgRateLimited = message{Title: "嘗試次數過多", TitleEn: "Too many attempts",
		Text: "請稍後再試。", TextEn: "Please wait a while and try again.", Back: true}
	msgCSRF = message{Title: "無法處理這個表單", TitleEn: "This form could not be accepted",
		Text:   "表單已過期或不是從本頁送出，沒有任何變更。請回到設定頁再試一次。",
		TextEn: "The form has expired or did not come from this page; nothing was changed. Go back to settings and try again.",
		Back:   true}
	msgNotFound = message{Title: "找不到", TitleEn: "Not found",
		Text: "找不到這個頁面或這位孩子。", TextEn: "This page or child was not found.", Back: true}
	msgInvalid = message{Title: "無法處理這個要求", TitleEn: "This request could not be handled",
		Text: "請回到設定頁再試一次。", TextEn: "Go back to settings and try again.", Back: true}
	msgUnavailable = message{Title: "服務暫時無法使用", TitleEn: "Service temporarily unavailable",
		Text: "請稍後再試。", TextEn: "Please try again later.", Back: true}
	msgInternal = message{Title: "發生錯誤", TitleEn: "Something went wrong",
		Text: "請稍後再試。", TextEn: "Please try again later.", Back: true}
	msgEmailConfirmed = message{Title: "電子郵件地址已確認", TitleEn: "E-mail address confirmed",
		Text:   "您勾選的 E-mail 通知將寄到這個地址。",
		TextEn: "The notices you ticked for e-mail will be sent to this address.", Back: true}
	msgEmailChanged = message{Title: "無法確認這個地址", TitleEn: "This address cannot be confirmed",
		Text:   "設定中的電子郵件地址已經變更。請使用最新一封確認信中的連結。",
		TextEn: "The e-mail address in your settings has changed since. Use the link in the latest confirmation mail."}
)

// spentLink is the page of a link from chat used twice or expired; it says how long links
// work, as configured.
func (s *Settings) spentLink() message {
	zh, en := durationText(s.cfg.LinkTTL)
	return message{Title: "連結已使用或已過期", TitleEn: "This link was already used or has expired",
		Text:   "為保護您的資料，每個連結只能使用一次，且 " + zh + "內有效。請回到 LINE 聊天室，點選選單的「通知設定」取得新連結。",
		TextEn: "To protect your data, each link works once and only for " + en + ". Go back to the chat in LINE and tap 通知設定 (settings) in the menu for a new link."}
}

// durationText writes d for a parent: whole hours as hours, anything else in minutes, rounded
// up.
func durationText(d time.Duration) (zh, en string) {
	n, zhUnit, enUnit := int((d+time.Minute-1)/time.Minute), "分鐘", "minute"
	if d >= time.Hour && d%time.Hour == 0 {
		n, zhUnit, enUnit = int(d/time.Hour), "小時", "hour"
	}
	if n != 1 {
		enUnit += "s"
	}
	return fmt.Sprintf("%d %s", n, zhUnit), fmt.Sprintf("%d %s", n, enUnit)
}

// retryText tells a parent from when they may try again, in the configured zone.
func (s *Settings) retryText(at time.Time) (zh, en string) {
	at = at.In(s.cfg.Location)
	zone := s.cfg.Location.String() + " time"
	if zone == ecardbot.Taipei.String()+" time" {
		zone = "Taipei time"
	}
	return at.Format("01/02 15:04"), at.Format("15:04 on 2 Jan") + " (" + zone + ")"
}

// flashes are the notices shown on the settings page after a change, chosen by a fixed key in
// the redirect's query so that no text travels in a URL.
var flashes = map[string][2]string{
	"added":         {"已加入孩子，預設以 LINE 接收三種通知。", "Child added. You get all three notices on LINE; change them below."},
	"saved":         {"通知設定已儲存。", "Notice settings saved."},
	"removed":       {"已移除孩子，不會再收到他的通知。", "Child removed. You will get no more notices about them."},
	"email-sent":    {"確認信已寄出，請開啟信中的連結完成確認。", "A confirmation mail is on its way: open its link to confirm the address."},
	"email-removed": {"已移除電子郵件地址。", "E-mail address removed."},
}

// kindLabels names the notice kinds on the pages.
var kindLabels = map[ecardbot.NoticeKind][2]string{
	ecardbot.KindArrived: {"到校", "Arrived"},
	ecardbot.KindLeft:    {"離校", "Left"},
	ecardbot.KindAbsent:  {"未到校", "Not arrived"},
}

// stateLabel sums a delivery state up for a parent: sent, still on its way, or not delivered.
func stateLabel(state string) (zh, en, class string) {
	switch state {
	case ecardbot.DeliverySent:
		return "已送達", "sent", "ok"
	case ecardbot.DeliveryPending, ecardbot.DeliveryQueued:
		return "傳送中", "pending", "wait"
	case ecardbot.DeliveryCancelled:
		return "未寄送", "not sent", "off"
	}
	return "失敗", "failed", "bad"
}
