package devstack

import "strings"

// ExportLines turns KEY=VALUE pairs into shell lines `export KEY='VALUE'`
// that set exactly VALUE when pasted into a POSIX shell: a DSN's & and ?
// would otherwise end the command or glob.
func ExportLines(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		out = append(out, "export "+k+"='"+strings.ReplaceAll(v, "'", `'\''`)+"'")
	}
	return out
}
