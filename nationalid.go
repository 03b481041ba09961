package ecardbot

import "strings"

// NormalizeNationalID trims s, turns full-width letters and digits into their ASCII forms and
// upper-cases ASCII letters. Parents type IDs on phone keyboards that often produce full-width
// or lower-case characters, and schools export rosters from spreadsheets with stray spaces:
// the same ID must always give the same KeyedHash, whoever typed it and how.
//
// Only ASCII and full-width letters change case. Other letters are left alone, so that a
// look-alike such as the dotless 'ı' can never pass for an 'I'.
func NormalizeNationalID(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case '０' <= r && r <= '９', 'Ａ' <= r && r <= 'Ｚ', 'ａ' <= r && r <= 'ｚ':
			r -= '０' - '0'
		}
		if 'a' <= r && r <= 'z' {
			r -= 'a' - 'A'
		}
		return r
	}, strings.TrimSpace(s))
}

// nationalIDLetterValues is the value of each first letter, A to Z, as listed in taipei.md §2.
// The values are not alphabetical (I, O and W were added later), hence the table.
var nationalIDLetterValues = [26]int{
	10, 11, 12, 13, 14, 15, 16, 17, 34, 18, 19, 20, 21, // A–M
	22, 35, 23, 24, 25, 26, 27, 28, 29, 32, 30, 31, 33, // N–Z
}

// nationalIDWeights multiply d0, d1 (the two digits of the letter's value), the second
// character and the eight digits that follow it.
var nationalIDWeights = [11]int{1, 9, 8, 7, 6, 5, 4, 3, 2, 1, 1}

// ValidateNationalID normalises s (NormalizeNationalID) and checks that it is a national ID
// (國民身分證, A123456789), a new-format resident ID (新式統一證號, A800000014) or an
// old-format resident ID (舊式統一證號, AA00000009) with a correct check digit. It returns the
// normalised ID, the only form that may be hashed or compared.
//
// Checking the digit before matching a roster catches most typing mistakes with a helpful
// message instead of the generic "no such pupil". The error is an *Error with code EINVALID
// whose message never contains the ID: error messages reach logs and screens, IDs must not.
func ValidateNationalID(s string) (string, error) {
	id := NormalizeNationalID(s)
	if id == "" {
		return "", Errorf(EINVALID, "ID number is required.")
	}
	if !nationalIDFormatOK(id) {
		return "", Errorf(EINVALID, "ID number must be one letter followed by 9 characters, as printed on the ID card or residence permit.")
	}
	if !nationalIDChecksumOK(id) {
		return "", Errorf(EINVALID, "ID number is not valid: please check each character.")
	}
	return id, nil
}

// nationalIDFormatOK reports whether id matches ^[A-Z][12]\d{8}$, ^[A-Z][89]\d{8}$ or
// ^[A-Z][A-D]\d{8}$.
func nationalIDFormatOK(id string) bool {
	if len(id) != 10 || id[0] < 'A' || id[0] > 'Z' {
		return false
	}
	switch id[1] {
	case '1', '2', '8', '9', 'A', 'B', 'C', 'D':
	default:
		return false
	}
	for i := 2; i < len(id); i++ {
		if id[i] < '0' || id[i] > '9' {
			return false
		}
	}
	return true
}

// nationalIDChecksumOK applies the checksum of taipei.md §2 to an id that passed
// nationalIDFormatOK.
func nationalIDChecksumOK(id string) bool {
	v := nationalIDLetterValues[id[0]-'A']
	digits := [11]int{v / 10, v % 10}
	if c := id[1]; c >= 'A' && c <= 'D' {
		// Old resident IDs: the last digit of the second letter's value (A→0 … D→3).
		digits[2] = nationalIDLetterValues[c-'A'] % 10
	} else {
		digits[2] = int(c - '0')
	}
	for i := 2; i < len(id); i++ {
		digits[i+1] = int(id[i] - '0')
	}
	sum := 0
	for i, d := range digits {
		sum += d * nationalIDWeights[i]
	}
	return sum%10 == 0
}
