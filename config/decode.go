package config

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// decode applies the YAML document over c. It walks the document beside
// the struct so that an unknown key or a bad value is reported by its
// dotted path ("go.sumdb.key"), which yaml's own errors do not give.
func decode(data []byte, c *Config) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return err
	}
	if doc.Kind == 0 { // empty file: keep the defaults
		return nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return errors.New("want one YAML document")
	}
	return decodeInto(doc.Content[0], reflect.ValueOf(c).Elem(), "")
}

func decodeInto(n *yaml.Node, v reflect.Value, at string) error {
	if n.Kind == yaml.AliasNode {
		return fmt.Errorf("%s: YAML aliases are not supported", name(at))
	}
	if _, custom := v.Addr().Interface().(yaml.Unmarshaler); custom || v.Kind() != reflect.Struct && v.Kind() != reflect.Slice {
		if err := n.Decode(v.Addr().Interface()); err != nil {
			return fmt.Errorf("%s: %s", name(at), cleanYAMLError(err))
		}
		return nil
	}
	if v.Kind() == reflect.Slice {
		if n.Kind != yaml.SequenceNode {
			return fmt.Errorf("%s: want a list (line %d)", name(at), n.Line)
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			if err := decodeInto(item, s.Index(i), fmt.Sprintf("%s[%d]", at, i)); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("%s: want a mapping of keys (line %d)", name(at), n.Line)
	}
	fields := map[string]int{}
	for i := 0; i < v.NumField(); i++ {
		tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
		if tag != "" && tag != "-" {
			fields[tag] = i
		}
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i].Value, n.Content[i+1]
		key := k
		if at != "" {
			key = at + "." + k
		}
		idx, ok := fields[k]
		if !ok {
			return fmt.Errorf("%s: unknown key (line %d)", key, n.Content[i].Line)
		}
		if seen[k] {
			return fmt.Errorf("%s: given twice (line %d)", key, n.Content[i].Line)
		}
		seen[k] = true
		if err := decodeInto(val, v.Field(idx), key); err != nil {
			return err
		}
	}
	return nil
}

func name(at string) string {
	if at == "" {
		return "top level"
	}
	return at
}

// cleanYAMLError drops yaml's "yaml: unmarshal errors:\n  line N:" framing.
func cleanYAMLError(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		return strings.TrimSpace(te.Errors[0])
	}
	return err.Error()
}

// Duration is a time.Duration written as "30s", "5m", "24h".
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a duration such as 30s or 5m")
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("%q is not a duration such as 30s or 5m", n.Value)
	}
	*d = Duration(v)
	return nil
}

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Size is a byte count written as a number or with a unit: "16MiB", "500MiB", "1GiB".
type Size int64

var sizeUnits = []struct {
	suffix string
	mult   int64
}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}

// UnmarshalYAML implements yaml.Unmarshaler.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseSize(n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		return fmt.Errorf("%q is not a size such as 16MiB", n.Value)
	}
	*s = v
	return nil
}

// ParseSize parses "16MiB", "1GB", "4096".
func ParseSize(s string) (Size, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return Size(n * mult), nil
}
