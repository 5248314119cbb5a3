package keystroke

// Keys are grouped into a few dozen classes before timings are attached to them: letters keep
// their own class, which is where typists differ most, while rare keys share one, so that a
// profile learnt from a few hundred keystrokes still has something to say about them.
const (
	classSpace = 26 + iota
	classShift
	classBackspace
	classPeriod
	classComma
	classApostrophe
	classCapsLock
	classDigit
	classPunct
	classArrow
	classOther
	// NumKeyClasses is the number of key classes.
	NumKeyClasses
)

// KeyClass maps a browser key code to its class in [0, NumKeyClasses), and reports false for a
// code that cannot be a key (negative or beyond 1023).
func KeyClass(code int) (int, bool) {
	switch {
	case code < 0 || code > 1023:
		return 0, false
	case code >= 'A' && code <= 'Z':
		return code - 'A', true
	case code == CodeSpace:
		return classSpace, true
	case code == CodeShift:
		return classShift, true
	case code == CodeBackspace:
		return classBackspace, true
	case code == 190 || code == 110:
		return classPeriod, true
	case code == 188:
		return classComma, true
	case code == 222:
		return classApostrophe, true
	case code == 20:
		return classCapsLock, true
	case code >= '0' && code <= '9', code >= 96 && code <= 105:
		return classDigit, true
	case code == 186 || code == 187 || code == 189 || code == 191 || code == 192 ||
		code >= 219 && code <= 221 || code == 59 || code == 61 || code == 173 || code == 45 ||
		code >= 106 && code <= 111:
		return classPunct, true
	case code >= 37 && code <= 40:
		return classArrow, true
	}
	return classOther, true
}

// KeyClassName names a key class in plain words.
func KeyClassName(c int) string {
	switch {
	case c >= 0 && c < 26:
		return string(rune('A' + c))
	case c == classSpace:
		return "space"
	case c == classShift:
		return "shift"
	case c == classBackspace:
		return "backspace"
	case c == classPeriod:
		return "full stop"
	case c == classComma:
		return "comma"
	case c == classApostrophe:
		return "apostrophe"
	case c == classCapsLock:
		return "caps lock"
	case c == classDigit:
		return "digits"
	case c == classPunct:
		return "punctuation"
	case c == classArrow:
		return "arrow keys"
	case c == classOther:
		return "other keys"
	}
	return "unknown key"
}
