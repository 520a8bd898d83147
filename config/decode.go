package config

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// KeyError is a decoding error at one key of the file: an unknown key, or a value that is not
// of the key's type. It names the key by its path (collector.interval, pricing.sheets[1].egress_gb),
// never by a Go type.
type KeyError struct {
	Line    int    // 1-based line of the key in the file
	Key     string // the key's path
	Msg     string // what is wrong, e.g. `"five" is not a duration (e.g. "90s", "5m", "400d")`
	Unknown bool   // the key is not a key of the configuration; Msg is a hint
}

func (e *KeyError) Error() string {
	if e.Unknown {
		return "unknown key " + e.Key + e.Msg
	}
	return e.Key + ": " + e.Msg
}

// valueError is what a scalar type's UnmarshalYAML returns: the message, without key or line,
// which the decoder adds.
type valueError string

func (e valueError) Error() string { return string(e) }

// defaulter is implemented by the element types of lists and maps whose new entries start from
// defaults rather than zero (a price sheet leaves out the prices it keeps).
type defaulter interface{ setDefaults() }

// decodeNode decodes n into v (a settable value) strictly: every key must be a field of v's
// struct type (by its yaml tag), every value of the field's type. Lists replace what v holds;
// maps merge into it, each entry from zero (or its defaults); scalars a file leaves out keep v's
// value. path names v in errors.
func decodeNode(n *yaml.Node, v reflect.Value, path string) error {
	for n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if isNull(n) {
		switch v.Kind() {
		case reflect.Slice, reflect.Map, reflect.Pointer, reflect.Interface:
			v.SetZero() // `key:` with no value clears a list or map
		}
		return nil
	}
	if u, ok := v.Addr().Interface().(yaml.Unmarshaler); ok {
		if err := u.UnmarshalYAML(n); err != nil {
			return keyError(n, path, err)
		}
		return nil
	}
	if v.Type() == reflect.TypeFor[time.Time]() {
		if n.Kind == yaml.ScalarNode {
			if t, err := time.Parse(time.RFC3339Nano, n.Value); err == nil {
				v.Set(reflect.ValueOf(t))
				return nil
			}
			if t, err := time.Parse(time.DateOnly, n.Value); err == nil {
				v.Set(reflect.ValueOf(t))
				return nil
			}
		}
		return mismatch(n, path, "an RFC 3339 time such as 2024-07-01T00:00:00Z")
	}
	switch v.Kind() {
	case reflect.Struct:
		return decodeStruct(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return mismatch(n, path, "a list")
		}
		out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			e := out.Index(i)
			if d, ok := e.Addr().Interface().(defaulter); ok {
				d.setDefaults()
			}
			if err := decodeNode(item, e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		v.Set(out)
		return nil
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return mismatch(n, path, "a mapping")
		}
		if v.Type().Key().Kind() != reflect.String {
			return fmt.Errorf("%s: maps with %s keys are not supported", path, v.Type().Key())
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			e := reflect.New(v.Type().Elem()).Elem()
			if d, ok := e.Addr().Interface().(defaulter); ok {
				d.setDefaults()
			}
			if err := decodeNode(val, e, path+"."+k.Value); err != nil {
				return err
			}
			v.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), e)
		}
		return nil
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		return decodeNode(n, v.Elem(), path)
	}
	if n.Kind != yaml.ScalarNode {
		return mismatch(n, path, kindName(v.Type()))
	}
	if err := n.Decode(v.Addr().Interface()); err != nil {
		return mismatch(n, path, kindName(v.Type()))
	}
	return nil
}

func decodeStruct(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind != yaml.MappingNode {
		return mismatch(n, path, "a mapping of keys")
	}
	t := v.Type()
	fields := map[string]int{}
	var known []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" || name == "" {
			continue
		}
		fields[name] = i
		known = append(known, name)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		kp := joinKey(path, k.Value)
		if k.Value == "" {
			kp = joinKey(path, `""`) // an empty or null key still has a name in messages
		}
		fi, ok := fields[k.Value]
		if !ok {
			msg := ""
			if s := closest(k.Value, known); s != "" {
				msg = fmt.Sprintf(" (did you mean %s?)", joinKey(path, s))
			} else if len(known) > 0 {
				msg = fmt.Sprintf(" (known: %s)", strings.Join(known, ", "))
			}
			return &KeyError{Line: k.Line, Key: kp, Msg: msg, Unknown: true}
		}
		if seen[k.Value] {
			return &KeyError{Line: k.Line, Key: kp, Msg: "is given twice"}
		}
		seen[k.Value] = true
		if err := decodeNode(val, v.Field(fi), kp); err != nil {
			return err
		}
	}
	return nil
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// keyError places err, from a type's UnmarshalYAML, at the key path.
func keyError(n *yaml.Node, path string, err error) error {
	var ke *KeyError
	if errors.As(err, &ke) {
		return err
	}
	return &KeyError{Line: n.Line, Key: path, Msg: err.Error()}
}

// mismatch reports a value that is not of the key's type.
func mismatch(n *yaml.Node, path, want string) error {
	if path == "" {
		path = "(top level)" // the document itself, e.g. a file that is just "0"
	}
	return &KeyError{Line: n.Line, Key: path, Msg: fmt.Sprintf("want %s, got %s", want, describe(n))}
}

// describe names a YAML value for a message: its text for a scalar, its kind otherwise.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "nothing"
}

func isNull(n *yaml.Node) bool {
	return n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// kindName names the type a key takes in words.
func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "a " + t.Kind().String()
}

// closest returns the known key nearest to k (edit distance at most 2), or "".
func closest(k string, known []string) string {
	best, bestD := "", 3
	for _, c := range known {
		if d := editDistance(k, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = slices.Min([]int{prev[j] + 1, cur[j-1] + 1, prev[j-1] + cost})
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
