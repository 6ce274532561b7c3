package schema

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkOddKeys parses lines whose undeclared keys are not ASCII or
// longer than 64 bytes: each such key is checked against the declared
// names (as Snowflake compares them) on every line. One declared name is
// long, so that no key is too long to be checked.
func BenchmarkOddKeys(b *testing.B) {
	s := Schema{Columns: []Column{{Name: "id", Type: Int64}, {Name: "name", Type: String, Nullable: true}, {Name: "Größe", Type: Float64, Nullable: true},
		// A long declared name: undeclared keys as long must be folded.
		{Name: strings.Repeat("Größenangabe_", 8), Type: String, Nullable: true}}}
	l, err := NewLayout(&s, LayoutOptions{})
	if err != nil {
		b.Fatal(err)
	}
	long := strings.Repeat("attribute_", 8)
	for name, line := range map[string]string{
		"ascii":        `{"id":1,"name":"a","extra_a":1,"extra_b":"x","extra_c":true,"Größe":1.5}`,
		"non-ascii":    `{"id":1,"name":"a","größe_alt":1,"ключ":"x","名前":true,"Größe":1.5}`,
		"non-ascii-40": `{"id":1,"name":"a","größe_größe_größe_größe_alt":1,"ключ_ключ_ключ_ключ_ключ":"x","名前名前名前名前名前名前名前":true,"Größe":1.5}`,
		"long":         fmt.Sprintf(`{"id":1,"name":"a","%s1":1,"%s2":"x","%s3":true,"Größe":1.5}`, long, long, long),
	} {
		line := []byte(line)
		b.Run(name, func(b *testing.B) {
			p := NewParser(l)
			r := NewRows(l)
			if err := p.AppendLine(r, line); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(line)))
			for i := 0; b.Loop(); i++ {
				if i%4096 == 0 {
					r.Reset()
				}
				if err := p.AppendLine(r, line); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
