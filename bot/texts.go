package bot

import "github.com/taipei-doit/ecardbot"

// chatTexts are the words the bot says, one set per language the service speaks.
type chatTexts struct {
	welcome string
	help    string
}

var texts = map[string]chatTexts{
	ecardbot.LangZhTW: {
		welcome: "歡迎加入臺北市政府 @taipei！\n\n" +
			"「到離校訊息通知」會在孩子於校門刷數位學生證時（到校、離校），" +
			"或到了學校規定時間仍未到校時（未到校），以 LINE 或電子郵件通知您。\n\n" +
			"使用前請先綁定您的臺北通金質會員帳號，再完成孩子的身分驗證（歸戶）。",
		help: "這裡是臺北市「到離校訊息通知」。\n\n" +
			"孩子於校門刷數位學生證後，我們會以 LINE 或電子郵件通知您孩子到校、離校或未到校。\n\n" +
			"如需協助，請洽孩子就讀的學校，或撥打 1999 臺北市民當家熱線。",
	},
	ecardbot.LangEn: {
		welcome: "Welcome to Taipei City Government @taipei!\n\n" +
			"School arrival notices tell you by LINE or e-mail when your child taps the digital " +
			"student card at the school gate (arrived, left), or has not arrived by the school's " +
			"cutoff time (not arrived).\n\n" +
			"To start, link your Taipei Card (TaipeiPASS) gold-member account, then verify your child.",
		help: "This is Taipei City's school arrival notice service.\n\n" +
			"When your child taps the digital student card at the school gate, we tell you by LINE " +
			"or e-mail that they arrived, left, or have not arrived.\n\n" +
			"For help, contact your child's school or call the 1999 Taipei citizen hotline.",
	},
}

// textsFor returns the texts for lang, Chinese for any language the service does not speak.
func textsFor(lang string) chatTexts {
	if t, ok := texts[lang]; ok {
		return t
	}
	return texts[ecardbot.LangZhTW]
}
