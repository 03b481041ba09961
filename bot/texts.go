package bot

import "github.com/taipei-doit/ecardbot"

// chatTexts are the words the bot says, one set per language the service speaks. Button
// texts stay within LINE's limits: a buttons template's text 160 characters, a label 20.
type chatTexts struct {
	welcome string
	help    string

	linkPrompt      string // with the button to /link
	linkLabel       string
	alreadyLinked   string // with the button to the settings home
	notLinked       string // before the link button, for actions that need a link
	linked          string // after accountLink ok, with the button to add a child
	linkedNoButton  string // the same when the settings link could not be made
	addChildLabel   string
	linkExpired     string
	settingsPrompt  string
	settingsLabel   string
	historyPrompt   string
	historyLabel    string
	unlinkConfirm   string
	unlinkYes       string
	unlinkNo        string
	unlinked        string
	unlinkCancelled string
	movedAway       string // pushed to the LINE user an account was linked away from
}

var texts = map[string]chatTexts{
	ecardbot.LangZhTW: {
		welcome: "歡迎加入臺北市政府 @taipei！\n\n" +
			"「到離校訊息通知」會在孩子於校門刷數位學生證時（到校、離校），" +
			"或到了學校規定時間仍未到校時（未到校），以 LINE 或電子郵件通知您。\n\n" +
			"使用前請先綁定您的臺北通金質會員帳號，再完成孩子的身分驗證（歸戶）：點下方「綁定臺北通」開始。",
		help: "這裡是臺北市「到離校訊息通知」。\n\n" +
			"孩子於校門刷數位學生證後，我們會以 LINE 或電子郵件通知您孩子到校、離校或未到校。\n\n" +
			"可以輸入：綁定、設定、紀錄、解除綁定、說明。\n\n" +
			"如需協助，請洽孩子就讀的學校，或撥打 1999 臺北市民當家熱線。",
		linkPrompt:      "請點「綁定臺北通」，以臺北通金質會員帳號登入。連結 10 分鐘內有效、只能用一次。綁定後隨時可輸入「解除綁定」取消。",
		linkLabel:       "綁定臺北通",
		alreadyLinked:   "您已綁定臺北通帳號。要新增孩子或變更通知，請開啟設定。",
		notLinked:       "您尚未綁定臺北通帳號。",
		linked:          "綁定完成！下一步：新增您的孩子（歸戶），再選擇要收到哪些通知。",
		linkedNoButton:  "綁定完成！下一步：輸入「設定」開啟設定頁，新增您的孩子（歸戶），再選擇要收到哪些通知。",
		addChildLabel:   "新增孩子",
		linkExpired:     "這次綁定已失效或已使用過，沒有綁定任何帳號。請再輸入「綁定」重新開始。",
		settingsPrompt:  "點「開啟設定」管理孩子與通知。連結僅限您本人使用，只能開啟一次。",
		settingsLabel:   "開啟設定",
		historyPrompt:   "點「查看紀錄」看孩子最近的到離校通知。連結僅限您本人使用，只能開啟一次。",
		historyLabel:    "查看紀錄",
		unlinkConfirm:   "確定要解除綁定嗎？解除後您不會再收到任何到離校通知。",
		unlinkYes:       "確定解除",
		unlinkNo:        "取消",
		unlinked:        "已解除綁定，您不會再收到通知。孩子的歸戶資料會保留：日後以同一個臺北通帳號重新綁定即可恢復，通知需重新設定。",
		unlinkCancelled: "好的，綁定維持不變。",
		movedAway: "您的臺北通帳號剛剛綁定到另一個 LINE 帳號，這個 LINE 帳號不會再收到到離校通知。" +
			"如果不是您本人操作，請立即更改臺北通密碼，並撥打 1999 臺北市民當家熱線。",
	},
	ecardbot.LangEn: {
		welcome: "Welcome to Taipei City Government @taipei!\n\n" +
			"School arrival notices tell you by LINE or e-mail when your child taps the digital " +
			"student card at the school gate (arrived, left), or has not arrived by the school's " +
			"cutoff time (not arrived).\n\n" +
			"To start, link your Taipei Card (TaipeiPASS) gold-member account, then verify your child: tap \"Link TaipeiPASS\" below.",
		help: "This is Taipei City's school arrival notice service.\n\n" +
			"When your child taps the digital student card at the school gate, we tell you by LINE " +
			"or e-mail that they arrived, left, or have not arrived.\n\n" +
			"You can send: link, settings, history, unlink, help.\n\n" +
			"For help, contact your child's school or call the 1999 Taipei citizen hotline.",
		linkPrompt:      "Tap Link TaipeiPASS and log in with your gold-member account. The link works once, for 10 minutes. Send \"unlink\" any time to undo.",
		linkLabel:       "Link TaipeiPASS",
		alreadyLinked:   "Your TaipeiPASS account is linked. Open settings to add a child or change notices.",
		notLinked:       "Your TaipeiPASS account is not linked yet.",
		linked:          "Linked! Next: add your child, then choose the notices you want.",
		linkedNoButton:  "Linked! Next: send \"settings\" to add your child, then choose the notices you want.",
		addChildLabel:   "Add your child",
		linkExpired:     "This link expired or was used already; nothing was linked. Send \"link\" to start again.",
		settingsPrompt:  "Tap Open settings to manage your children and notices. The link is for you only and opens once.",
		settingsLabel:   "Open settings",
		historyPrompt:   "Tap View history to see your child's recent notices. The link is for you only and opens once.",
		historyLabel:    "View history",
		unlinkConfirm:   "Unlink your TaipeiPASS account? You will get no more school notices.",
		unlinkYes:       "Yes, unlink",
		unlinkNo:        "Cancel",
		unlinked:        "Unlinked: you will get no more notices. Your children stay verified: link the same TaipeiPASS account again to get them back, then choose notices again.",
		unlinkCancelled: "OK, your link stays as it is.",
		movedAway: "Your TaipeiPASS account was just linked to another LINE account; this LINE account gets no more school notices. " +
			"If that was not you, change your TaipeiPASS password now and call the 1999 Taipei citizen hotline.",
	},
}

// textsFor returns the texts for lang, Chinese for any language the service does not speak.
func textsFor(lang string) chatTexts {
	if t, ok := texts[lang]; ok {
		return t
	}
	return texts[ecardbot.LangZhTW]
}
