package store

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
)

// Opaque ids: a sequence number the API shows (a notification cursor, a billing report id) is
// sealed with this installation's key together with its kind and the team it belongs to, so it
// says nothing about how many rows other tenants have and is refused for another team. A seal
// is one AES block: kind (1 byte), the number (8 bytes), a tag of the team (7 bytes).

const opaqueKeyName = "opaque_ids"

// loadOpaqueKey reads the installation's key, creating it on first use; replicas that race
// agree on the first one written.
func (s *Store) loadOpaqueKey(ctx context.Context) error {
	var k [32]byte
	_, _ = rand.Read(k[:])
	ins := "INSERT INTO instance_keys (name, key, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING"
	if _, err := s.exec(ctx, ins, opaqueKeyName, k[:], s.now()); err != nil {
		return fmt.Errorf("create the opaque id key: %w", err)
	}
	var key []byte
	if err := s.db.QueryRowContext(ctx, s.rebind("SELECT key FROM instance_keys WHERE name = ?"), opaqueKeyName).Scan(&key); err != nil {
		return fmt.Errorf("read the opaque id key: %w", err)
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return fmt.Errorf("opaque id key: %w", err)
	}
	s.opaque = b
	return nil
}

func teamTag(teamID string) [7]byte {
	h := sha256.Sum256([]byte("cygni-team:" + teamID))
	var t [7]byte
	copy(t[:], h[:])
	return t
}

// sealID returns the opaque form of n (kind, team).
func sealID(b cipher.Block, kind byte, teamID string, n int64) string {
	var blk [16]byte
	blk[0] = kind
	binary.BigEndian.PutUint64(blk[1:9], uint64(n))
	t := teamTag(teamID)
	copy(blk[9:], t[:])
	b.Encrypt(blk[:], blk[:])
	return base64.RawURLEncoding.EncodeToString(blk[:])
}

// openID returns the number sealed in id for (kind, team), or false for anything else.
func openID(b cipher.Block, kind byte, teamID, id string) (int64, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil || len(raw) != 16 {
		return 0, false
	}
	b.Decrypt(raw, raw)
	t := teamTag(teamID)
	if raw[0] != kind || string(raw[9:]) != string(t[:]) {
		return 0, false
	}
	n := int64(binary.BigEndian.Uint64(raw[1:9]))
	return n, n > 0
}

// Kinds of sealed ids.
const (
	opaqueCursor        byte = 'n'
	opaqueBillingReport byte = 'b'
)

// BillingReportRef is the id the API shows for a team's billing report row id.
func (s *Store) BillingReportRef(teamID string, id int64) string {
	return PrefixBillingReport + sealID(s.opaque, opaqueBillingReport, teamID, id)
}

// ParseBillingReportRef returns the row id of a ref made by BillingReportRef for the team;
// ErrNotFound for any other string (another team's ref included).
func (s *Store) ParseBillingReportRef(teamID, ref string) (int64, error) {
	if len(ref) > len(PrefixBillingReport) && ref[:len(PrefixBillingReport)] == PrefixBillingReport {
		if id, ok := openID(s.opaque, opaqueBillingReport, teamID, ref[len(PrefixBillingReport):]); ok {
			return id, nil
		}
	}
	return 0, fmt.Errorf("billing report %q: %w", ref, ErrNotFound)
}

// PrefixBillingReport starts the API's billing report ids.
const PrefixBillingReport = "brp_"
