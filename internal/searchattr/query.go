package searchattr

import "strings"

// Quote is s as a string literal of Temporal's visibility query language
// (a SQL dialect): in single quotes, with backslashes and single quotes
// escaped by a backslash, so that no value can end the literal early and
// add conditions of its own.
func Quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for _, r := range s {
		switch r {
		case '\\', '\'':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('\'')
	return b.String()
}
