package anomaly

import "testing"

// osaDistance is the optimal string alignment distance (Damerau with
// adjacent transpositions), the reference oneEdit must agree with.
func osaDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// FuzzOneEdit: package names come from upstream registries and clients.
func FuzzOneEdit(f *testing.F) {
	for _, s := range [][2]string{{"lodash", "lodahs"}, {"cross-env", "crossenv"}, {"a", ""}, {"ab", "ba"}, {"abc", "abc"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if len(a) > 64 || len(b) > 64 {
			return
		}
		got := oneEdit(a, b)
		if got != oneEdit(b, a) {
			t.Fatalf("oneEdit(%q, %q) is not symmetric", a, b)
		}
		if want := osaDistance(a, b) == 1; got != want {
			t.Fatalf("oneEdit(%q, %q) = %v, distance %d", a, b, got, osaDistance(a, b))
		}
		Typosquat(a, []string{b})
	})
}
