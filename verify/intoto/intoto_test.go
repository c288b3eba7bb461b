package intoto

import "testing"

func TestCheckUniqueKeys(t *testing.T) {
	for in, ok := range map[string]bool{
		`{"a":1,"b":{"a":2},"c":[{"a":1},{"a":2}]}`: true,
		`[1,"a",{"x":null}]`:                        true,
		`{"a":1,"a":2}`:                             false,
		`{"subject":[],"Subject":[]}`:               false,
		`{"x":{"k":1,"\u212a":2}}`:                  false,
		`{"x":[{"s":1,"ſ":2}]}`:                     false,
		`{"a":{"b":1},"b":2}`:                       true,
		`{"a":`:                                     false,
	} {
		if err := CheckUniqueKeys([]byte(in)); (err == nil) != ok {
			t.Errorf("CheckUniqueKeys(%s) = %v, want ok=%v", in, err, ok)
		}
	}
}
