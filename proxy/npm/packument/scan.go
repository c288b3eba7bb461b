package packument

import (
	"bytes"
	"encoding/json"
	"errors"
	"unicode/utf8"
)

// The splitters below walk JSON that json.Valid has already accepted, so
// they only find boundaries; they still bounds-check so that a bug cannot
// panic. Values they return are sub-slices of their input.

var errSyntax = errors.New("unexpected JSON structure")

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// skipString returns the index just past the string starting at b[i] == '"'.
func skipString(b []byte, i int) (int, error) {
	i++
	for {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return 0, errSyntax
		}
		q := i + j
		n := 0 // backslashes before the quote
		for k := q - 1; k >= i && b[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return q + 1, nil
		}
		i = q + 1
	}
}

// skipValue returns the index just past the value starting at b[i].
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errSyntax
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				j, err := skipString(b, i)
				if err != nil {
					return 0, err
				}
				i = j - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, nil
				}
			}
		}
		return 0, errSyntax
	default:
		for ; i < len(b); i++ {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i, nil
			}
		}
		return i, nil
	}
}

// decodeString decodes a JSON string value, taking the bytes as they are
// when there is nothing to unescape.
func decodeString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	in := raw[1 : len(raw)-1]
	if bytes.IndexByte(in, '\\') < 0 && utf8.Valid(in) {
		return string(in), true
	}
	var s string
	return s, json.Unmarshal(raw, &s) == nil
}

// splitObject returns the members of the object raw (valid JSON); ok is
// false when raw is not an object.
func splitObject(raw []byte) (m map[string]json.RawMessage, ok bool, err error) {
	m, _, ok, err = splitObjectN(raw)
	return m, ok, err
}

// splitObjectN is splitObject that also counts the members, duplicates
// included. Values are sub-slices of raw that keep its capacity, so their
// offset in raw is cap(raw)-cap(value).
func splitObjectN(raw []byte) (m map[string]json.RawMessage, n int, ok bool, err error) {
	if len(raw) == 0 || raw[0] != '{' {
		return nil, 0, false, nil
	}
	m = map[string]json.RawMessage{}
	i := skipSpace(raw, 1)
	if i < len(raw) && raw[i] == '}' {
		return m, n, true, nil
	}
	for i < len(raw) {
		if raw[i] != '"' {
			return nil, 0, false, errSyntax
		}
		j, err := skipString(raw, i)
		if err != nil {
			return nil, 0, false, err
		}
		key, ok := decodeString(raw[i:j])
		if !ok {
			return nil, 0, false, errSyntax
		}
		i = skipSpace(raw, j)
		if i >= len(raw) || raw[i] != ':' {
			return nil, 0, false, errSyntax
		}
		i = skipSpace(raw, i+1)
		j, err = skipValue(raw, i)
		if err != nil {
			return nil, 0, false, err
		}
		m[key] = raw[i:j]
		n++
		i = skipSpace(raw, j)
		if i >= len(raw) {
			break
		}
		switch raw[i] {
		case '}':
			return m, n, true, nil
		case ',':
			i = skipSpace(raw, i+1)
		default:
			return nil, 0, false, errSyntax
		}
	}
	return nil, 0, false, errSyntax
}

// splitArray returns the elements of the array raw (valid JSON); ok is false
// when raw is not an array.
func splitArray(raw []byte) (elems []json.RawMessage, ok bool, err error) {
	if len(raw) == 0 || raw[0] != '[' {
		return nil, false, nil
	}
	i := skipSpace(raw, 1)
	if i < len(raw) && raw[i] == ']' {
		return nil, true, nil
	}
	for i < len(raw) {
		j, err := skipValue(raw, i)
		if err != nil {
			return nil, false, err
		}
		elems = append(elems, raw[i:j:j])
		i = skipSpace(raw, j)
		if i >= len(raw) {
			break
		}
		switch raw[i] {
		case ']':
			return elems, true, nil
		case ',':
			i = skipSpace(raw, i+1)
		default:
			return nil, false, errSyntax
		}
	}
	return nil, false, errSyntax
}

// stringMap decodes an object whose values are all strings.
func stringMap(raw []byte) (map[string]string, bool) {
	m, ok, err := splitObject(raw)
	if !ok || err != nil {
		return nil, false
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		s, ok := decodeString(v)
		if !ok {
			return nil, false
		}
		out[k] = s
	}
	return out, true
}

// person decodes {"name": ..., "email": ..., "trustedPublisher": ...}.
func person(raw []byte) (Person, bool) {
	m, ok, err := splitObject(raw)
	if !ok || err != nil {
		return Person{}, false
	}
	var p Person
	if r, ok := m["name"]; ok {
		if p.Name, ok = decodeString(r); !ok {
			return p, false
		}
	}
	if r, ok := m["email"]; ok {
		if p.Email, ok = decodeString(r); !ok {
			return p, false
		}
	}
	p.TrustedPublisher = m["trustedPublisher"]
	return p, true
}
