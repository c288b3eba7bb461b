// Package intoto is the in-toto statement as Airlock's verifiers read it
// (cosign attestations, npm provenance, CI provenance), and the check that
// a signed statement can be read only one way.
package intoto

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// PayloadType is the DSSE payload type of an in-toto statement.
const PayloadType = "application/vnd.in-toto+json"

// Statement is an in-toto statement, v0.1 or v1; the predicate is left
// raw for the caller to read by its type.
type Statement struct {
	Type          string          `json:"_type"`
	PredicateType string          `json:"predicateType"`
	Subject       []Subject       `json:"subject"`
	Predicate     json.RawMessage `json:"predicate"`
}

// Subject is one artifact a statement is about.
type Subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// CheckUniqueKeys rejects JSON with an object key repeated, exactly or up
// to case: encoding/json matches keys case-insensitively and keeps the
// last, while other readers (sigstore-go's protojson, a human with jq) may
// read the first, and a signed statement must mean one thing.
func CheckUniqueKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	type frame struct {
		keys   map[string]bool // nil in an array
		expect bool            // in an object, the next string token is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			if len(stack) > 0 {
				return io.ErrUnexpectedEOF
			}
			return nil
		}
		if err != nil {
			return err
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{':
				stack = append(stack, &frame{keys: map[string]bool{}, expect: true})
			case '[':
				stack = append(stack, &frame{})
			default:
				stack = stack[:len(stack)-1]
				if len(stack) > 0 && stack[len(stack)-1].keys != nil {
					stack[len(stack)-1].expect = true
				}
			}
			continue
		}
		if top == nil || top.keys == nil {
			continue
		}
		if top.expect {
			// Upper then lower folds as encoding/json does, "ſ" and the
			// Kelvin sign included.
			s := tok.(string)
			k := strings.ToLower(strings.ToUpper(s))
			if top.keys[k] {
				if len(s) > 80 {
					s = s[:80] + "…"
				}
				return fmt.Errorf("key %q appears twice", s)
			}
			top.keys[k] = true
			top.expect = false
			continue
		}
		top.expect = true
	}
}
