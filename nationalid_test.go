package ecardbot_test

import (
	"strings"
	"testing"

	"github.com/taipei-doit/ecardbot"
)

// Test vectors of taipei.md §2.
var (
	validNationalIDs    = strings.Fields("A123456789 F131104093 O158238845 N116247806 L122544270 C180661564 Y123456788")
	validOldResidentIDs = strings.Fields("AA00000009 AB00207171 AC03095424 BD01300667 CC00151114 HD02717288 TD00251124 AD30196818")
	validNewResidentIDs = strings.Fields("A800000014 A900207177 A803095426 B801300667 C800151116 H802717288 T900251126 A930196810 A870000015")
	invalidIDs          = strings.Fields("A123456788 F131104091 O158238842 AA00000000 FG31104091 OY58238842 A800000000 F931104091 O958238842")
)

func TestValidateNationalIDVectors(t *testing.T) {
	groups := []struct {
		name  string
		ids   []string
		valid bool
	}{
		{name: "national", ids: validNationalIDs, valid: true},
		{name: "old resident", ids: validOldResidentIDs, valid: true},
		{name: "new resident", ids: validNewResidentIDs, valid: true},
		{name: "invalid", ids: invalidIDs, valid: false},
	}
	for _, g := range groups {
		for _, id := range g.ids {
			t.Run(g.name+"/"+id, func(t *testing.T) {
				got, err := ecardbot.ValidateNationalID(id)
				if g.valid {
					if err != nil {
						t.Fatalf("ValidateNationalID(%q) error = %v, want nil", id, err)
					}
					if got != id {
						t.Errorf("ValidateNationalID(%q) = %q, want it unchanged", id, got)
					}
					if !referenceValid(id) {
						t.Errorf("reference checksum rejects %q", id)
					}
					return
				}
				MustBeSafeInvalid(t, id, got, err)
				if referenceValid(id) {
					t.Errorf("reference checksum accepts %q", id)
				}
			})
		}
	}
}

func TestValidateNationalID(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  string // "" means invalid
	}{
		{name: "lower case", input: "a123456789", want: "A123456789"},
		{name: "lower case old resident", input: "ab00207171", want: "AB00207171"},
		{name: "mixed case old resident", input: "aB00207171", want: "AB00207171"},
		{name: "full-width", input: "Ａ１２３４５６７８９", want: "A123456789"},
		{name: "full-width lower case", input: "ａｂ００２０７１７１", want: "AB00207171"},
		{name: "full-width and half-width mixed", input: "Ａ8０0000014", want: "A800000014"},
		{name: "surrounding spaces", input: "  A123456789\t\n", want: "A123456789"},
		{name: "ideographic spaces", input: "\u3000A123456789\u3000", want: "A123456789"},
		{name: "empty", input: ""},
		{name: "only spaces", input: " \t\u3000 "},
		{name: "too short", input: "A12345678"},
		{name: "too long", input: "A1234567890"},
		{name: "valid prefix with extra digit", input: "A1234567891"},
		{name: "one character", input: "A"},
		{name: "inner space", input: "A123 456789"},
		{name: "inner hyphen", input: "A123-456789"},
		{name: "digit first", input: "1123456789"},
		{name: "second character 3", input: "A323456789"},
		{name: "second character E", input: "AE00000000"},
		{name: "letter among digits", input: "A12345678X"},
		{name: "dotless i look-alike", input: "ı123456789"},
		{name: "long s look-alike", input: "ſ123456789"},
		{name: "full-width hyphen", input: "A123４５６７８－"},
		{name: "invalid UTF-8", input: "A12345678\xff"},
		{name: "checksum off by one", input: "A123456780"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ecardbot.ValidateNationalID(tt.input)
			if tt.want == "" {
				MustBeSafeInvalid(t, tt.input, got, err)
				return
			}
			if err != nil {
				t.Fatalf("ValidateNationalID(%q) error = %v, want nil", tt.input, err)
			}
			if got != tt.want {
				t.Errorf("ValidateNationalID(%q) = %q, want %q", tt.input, got, tt.want)
			}
		})
	}
}

func TestNormalizeNationalID(t *testing.T) {
	tests := []struct {
		name, input, want string
	}{
		{name: "unchanged", input: "A123456789", want: "A123456789"},
		{name: "trim", input: " a123456789 ", want: "A123456789"},
		{name: "full-width letters and digits", input: "ＡＢＣａｂｃ０１９", want: "ABCABC019"},
		{name: "full-width punctuation kept", input: "Ａ－１", want: "A－1"},
		{name: "other scripts kept", input: "ıſé", want: "ıſé"},
		{name: "empty", input: "", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ecardbot.NormalizeNationalID(tt.input); got != tt.want {
				t.Errorf("NormalizeNationalID(%q) = %q, want %q", tt.input, got, tt.want)
			}
		})
	}
}

func FuzzValidateNationalID(f *testing.F) {
	for _, ids := range [][]string{validNationalIDs, validOldResidentIDs, validNewResidentIDs, invalidIDs} {
		for _, id := range ids {
			f.Add(id)
			f.Add(strings.ToLower(id))
		}
	}
	f.Add("Ａ１２３４５６７８９")
	f.Add(" \u3000a123456789 ")
	f.Add("")
	f.Add("A12345678\xff")
	f.Fuzz(func(t *testing.T, s string) {
		norm := ecardbot.NormalizeNationalID(s)
		if again := ecardbot.NormalizeNationalID(norm); again != norm {
			t.Fatalf("NormalizeNationalID not idempotent: %q → %q → %q", s, norm, again)
		}
		got, err := ecardbot.ValidateNationalID(s)
		if err != nil {
			MustBeSafeInvalid(t, s, got, err)
			if referenceValid(norm) {
				t.Fatalf("ValidateNationalID(%q) rejects an ID the reference accepts", s)
			}
			return
		}
		if got != norm {
			t.Fatalf("ValidateNationalID(%q) = %q, want the normalised %q", s, got, norm)
		}
		if !referenceValid(got) {
			t.Fatalf("ValidateNationalID(%q) accepts %q, the reference does not", s, got)
		}
		again, err := ecardbot.ValidateNationalID(got)
		if err != nil || again != got {
			t.Fatalf("ValidateNationalID(%q) = %q, %v; want %q, nil", got, again, err, got)
		}
	})
}

// MustBeSafeInvalid fails unless err is EINVALID, got is empty and the message shows neither
// the input nor its normalised form.
func MustBeSafeInvalid(tb testing.TB, input, got string, err error) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("ValidateNationalID(%q) = %q, nil; want an error", input, got)
	}
	if got != "" {
		tb.Errorf("ValidateNationalID(%q) returned %q with an error, want \"\"", input, got)
	}
	if code := ecardbot.ErrorCode(err); code != ecardbot.EINVALID {
		tb.Errorf("ErrorCode = %q, want %q", code, ecardbot.EINVALID)
	}
	msg := ecardbot.ErrorMessage(err)
	if msg == "" {
		tb.Errorf("empty error message")
	}
	// The normalised input is upper case; the messages have no upper-case run of 6 or more
	// characters, so from 6 characters on a match means the message repeats the input.
	if s := ecardbot.NormalizeNationalID(input); len(s) >= 6 && (strings.Contains(msg, s) || strings.Contains(err.Error(), s)) {
		tb.Errorf("error %q contains the ID %q", err.Error(), s)
	}
}

// referenceValid checks an ID independently of the package: letter values from their position
// in "ABCDEFGHJKLMNPQRSTUVXYWZIO" plus 10, weights 1 9 8 7 6 5 4 3 2 1 1.
func referenceValid(id string) bool {
	const order = "ABCDEFGHJKLMNPQRSTUVXYWZIO"
	if len(id) != 10 {
		return false
	}
	first := strings.IndexByte(order, id[0])
	if first < 0 {
		return false
	}
	v := first + 10
	digits := []int{v / 10, v % 10}
	switch c := id[1]; {
	case c == '1' || c == '2' || c == '8' || c == '9':
		digits = append(digits, int(c-'0'))
	case c >= 'A' && c <= 'D':
		digits = append(digits, (strings.IndexByte(order, c)+10)%10)
	default:
		return false
	}
	for _, c := range id[2:] {
		if c < '0' || c > '9' {
			return false
		}
		digits = append(digits, int(c-'0'))
	}
	sum := 0
	for i, w := range []int{1, 9, 8, 7, 6, 5, 4, 3, 2, 1, 1} {
		sum += digits[i] * w
	}
	return sum%10 == 0
}
