package store

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
)

// ID prefixes.
const (
	PrefixTeam         = "team_"
	PrefixProject      = "proj_"
	PrefixToken        = "tok_"
	PrefixNotification = "ntf_"
)

// idPattern is what follows the prefix of every id: 1-64 letters, digits, '-' or '_'.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidID reports whether id is prefix followed by 1-64 letters, digits, '-' or '_'. The API
// rejects other ids with a 400 before they reach the database.
func ValidID(prefix, id string) bool {
	rest, ok := strings.CutPrefix(id, prefix)
	return ok && idPattern.MatchString(rest)
}

// CheckID returns an error naming the problem when id is not a valid id with prefix.
func CheckID(prefix, id string) error {
	if !ValidID(prefix, id) {
		return fmt.Errorf("%q is not a valid id: want %s followed by 1-64 letters, digits, '-' or '_'", id, prefix)
	}
	return nil
}

// newID returns prefix followed by 16 random hex digits.
func newID(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return prefix + hex.EncodeToString(b[:])
}

// ValidRole reports whether role is admin, billing or member.
func ValidRole(role string) bool {
	return role == "admin" || role == "billing" || role == "member"
}
