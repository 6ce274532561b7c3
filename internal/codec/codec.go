// Package codec encrypts the payloads feedpipe's programs send to Temporal
// (workflow inputs and results, activity inputs and results, heartbeat
// details, query answers, failure details), so that those payloads hold no
// bucket, key, pipeline or record content in the clear. The workflow id and
// the search attributes, which the server indexes, are not payloads and stay
// readable.
//
// Each payload is marshalled whole (its metadata and data), sealed with
// AES-256-GCM under the first key of a Keyring, and replaced by a payload
// whose metadata says encoding "binary/encrypted" and names the key
// ("encryption-key-id"). Decode picks the key by that id, so keys can be
// rotated: put a new key first, keep the old ones after it. Payloads
// without the encrypted encoding pass through Decode unchanged, so
// histories written before encryption was turned on still read.
//
// Keys come from the environment (FromEnv): FEEDPIPE_CODEC_KEYS_FILE names
// a file of lines `<id> <base64 of 32 bytes>` (the first line's key
// encrypts, the others only decrypt; blank lines and lines starting with #
// are ignored), or FEEDPIPE_CODEC_KEY holds one key as `<id>:<base64>`.
package codec

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"
)

// Metadata of an encrypted payload.
const (
	// Encoding is the "encoding" metadata of an encrypted payload.
	Encoding = "binary/encrypted"
	// MetadataKeyID is the metadata key naming the key that sealed a payload.
	MetadataKeyID = "encryption-key-id"
)

// Environment variables that configure the codec.
const (
	// EnvKeysFile names a key file: lines `<id> <base64 of 32 bytes>`, the
	// first line's key encrypting.
	EnvKeysFile = "FEEDPIPE_CODEC_KEYS_FILE"
	// EnvKey holds a single key as `<id>:<base64 of 32 bytes>`.
	EnvKey = "FEEDPIPE_CODEC_KEY"
)

// KeySize is the length of an AES-256 key in bytes.
const KeySize = 32

// Key is one AES-256 key and the id payloads sealed with it carry.
type Key struct {
	ID     string
	Secret []byte
}

// Keyring is an ordered set of keys: the first encrypts, every one decrypts.
type Keyring struct {
	keys   []Key
	byID   map[string]cipher.AEAD
	source string // where the keys came from, for error messages
}

// NewKeyring checks keys (at least one, unique ids without white space or
// ':', 32 bytes each) and returns them as a Keyring. source says where they
// came from (a file name or an environment variable) and is named in errors.
func NewKeyring(source string, keys ...Key) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("codec: %s holds no key; add a line `<id> <base64 of 32 random bytes>` (e.g. from `openssl rand -base64 32`)", source)
	}
	k := &Keyring{byID: make(map[string]cipher.AEAD, len(keys)), source: source}
	for _, key := range keys {
		if err := checkID(key.ID); err != nil {
			return nil, fmt.Errorf("codec: %s: %w", source, err)
		}
		if _, dup := k.byID[key.ID]; dup {
			return nil, fmt.Errorf("codec: %s: key id %q appears twice; give each key its own id", source, key.ID)
		}
		if len(key.Secret) != KeySize {
			return nil, fmt.Errorf("codec: %s: key %q is %d bytes; AES-256 needs exactly %d (generate one with `openssl rand -base64 32`)", source, key.ID, len(key.Secret), KeySize)
		}
		block, err := aes.NewCipher(key.Secret)
		if err != nil {
			return nil, fmt.Errorf("codec: %s: key %q: %w", source, key.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("codec: %s: key %q: %w", source, key.ID, err)
		}
		k.byID[key.ID] = aead
		k.keys = append(k.keys, Key{ID: key.ID, Secret: bytes.Clone(key.Secret)})
	}
	return k, nil
}

func checkID(id string) error {
	if id == "" {
		return errors.New("a key has an empty id")
	}
	if strings.ContainsFunc(id, func(r rune) bool { return unicode.IsSpace(r) || r == ':' || !unicode.IsPrint(r) }) {
		return fmt.Errorf("key id %q has white space, ':' or an unprintable character", id)
	}
	return nil
}

// EncryptingID is the id of the key that encrypts.
func (k *Keyring) EncryptingID() string { return k.keys[0].ID }

// IDs are the ids of every key, the encrypting one first.
func (k *Keyring) IDs() []string {
	ids := make([]string, len(k.keys))
	for i, key := range k.keys {
		ids[i] = key.ID
	}
	return ids
}

// Source is where the keys came from: a file name or an environment variable.
func (k *Keyring) Source() string { return k.source }

// ParseKeys reads a key file's lines `<id> <base64 of 32 bytes>`; blank
// lines and lines starting with # are skipped. source names the file in
// errors.
func ParseKeys(r io.Reader, source string) (*Keyring, error) {
	var keys []Key
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("codec: %s line %d: want `<id> <base64 key>`, got %d fields", source, n, len(f))
		}
		secret, err := base64.StdEncoding.DecodeString(f[1])
		if err != nil {
			return nil, fmt.Errorf("codec: %s line %d: key %q is not standard base64: %w", source, n, f[0], err)
		}
		keys = append(keys, Key{ID: f[0], Secret: secret})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("codec: read %s: %w", source, err)
	}
	return NewKeyring(source, keys...)
}

// LoadKeysFile reads the key file at path (see ParseKeys).
func LoadKeysFile(path string) (*Keyring, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("codec: cannot read the key file %s (%s): %w", path, EnvKeysFile, err)
	}
	defer f.Close()
	return ParseKeys(f, path)
}

// ParseKey reads one key written `<id>:<base64 of 32 bytes>`, as
// FEEDPIPE_CODEC_KEY holds it.
func ParseKey(s string) (*Keyring, error) {
	id, b64, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return nil, fmt.Errorf("codec: %s: want `<id>:<base64 key>`, found no ':'", EnvKey)
	}
	secret, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("codec: %s: key %q is not standard base64: %w", EnvKey, id, err)
	}
	return NewKeyring(EnvKey, Key{ID: id, Secret: secret})
}

// KeysFromEnv returns the keys the environment configures (FEEDPIPE_CODEC_KEYS_FILE
// or FEEDPIPE_CODEC_KEY), or nil when it configures none. lookup is
// os.LookupEnv in production.
func KeysFromEnv(lookup func(string) (string, bool)) (*Keyring, error) {
	file, _ := lookup(EnvKeysFile)
	one, _ := lookup(EnvKey)
	switch {
	case file != "" && one != "":
		return nil, fmt.Errorf("codec: both %s and %s are set; set one", EnvKeysFile, EnvKey)
	case file != "":
		return LoadKeysFile(file)
	case one != "":
		return ParseKey(one)
	}
	return nil, nil
}

// FromEnv returns the codec the environment configures, or nil when it
// configures no key (payloads then travel unencrypted).
func FromEnv(lookup func(string) (string, bool)) (*Codec, error) {
	k, err := KeysFromEnv(lookup)
	if err != nil || k == nil {
		return nil, err
	}
	return New(k), nil
}

// Codec is a converter.PayloadCodec that seals payloads with AES-256-GCM.
// It is safe for concurrent use.
type Codec struct {
	keys *Keyring
}

var _ converter.PayloadCodec = (*Codec)(nil)

// New returns a Codec that encrypts with keys' first key and decrypts with
// any of them.
func New(keys *Keyring) *Codec { return &Codec{keys: keys} }

// Keys are the codec's keys.
func (c *Codec) Keys() *Keyring { return c.keys }

// Encode seals each payload whole under the encrypting key.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	id := c.keys.EncryptingID()
	aead := c.keys.byID[id]
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := proto.Marshal(p)
		if err != nil {
			return payloads, fmt.Errorf("codec: marshal payload %d: %w", i, err)
		}
		nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
		if _, err := rand.Read(nonce); err != nil {
			return payloads, fmt.Errorf("codec: nonce: %w", err)
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{converter.MetadataEncoding: []byte(Encoding), MetadataKeyID: []byte(id)},
			Data:     aead.Seal(nonce, nonce, plain, []byte(id)),
		}
	}
	return out, nil
}

// Decode opens each encrypted payload with the key its metadata names;
// payloads of any other encoding are returned as they are.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()[converter.MetadataEncoding]) != Encoding {
			out[i] = p
			continue
		}
		id := string(p.GetMetadata()[MetadataKeyID])
		if id == "" {
			return payloads, fmt.Errorf("codec: payload %d is encrypted but names no key (no %q metadata)", i, MetadataKeyID)
		}
		aead, ok := c.keys.byID[id]
		if !ok {
			return payloads, fmt.Errorf("codec: payload %d was encrypted with key %q, which %s does not hold (it has %s); add that key's line `%s <base64>` to %s, after the encrypting key: keys are kept after a rotation so old histories still decode",
				i, id, c.keys.source, strings.Join(c.keys.IDs(), ", "), id, c.keys.source)
		}
		data := p.GetData()
		if len(data) < aead.NonceSize() {
			return payloads, fmt.Errorf("codec: payload %d (key %q) is %d bytes, too short to be encrypted", i, id, len(data))
		}
		plain, err := aead.Open(nil, data[:aead.NonceSize()], data[aead.NonceSize():], []byte(id))
		if err != nil {
			return payloads, fmt.Errorf("codec: payload %d does not decrypt with key %q of %s (the key's bytes differ from those that encrypted it, or the payload was altered): %w", i, id, c.keys.source, err)
		}
		var dec commonpb.Payload
		if err := proto.Unmarshal(plain, &dec); err != nil {
			return payloads, fmt.Errorf("codec: payload %d (key %q): unmarshal the decrypted payload: %w", i, id, err)
		}
		out[i] = &dec
	}
	return out, nil
}

// DataConverter is the SDK's default data converter with c applied to
// every payload.
func DataConverter(c *Codec) converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c)
}

// NewKey returns a fresh random key with the given id.
func NewKey(id string) (Key, error) {
	secret := make([]byte, KeySize)
	if _, err := rand.Read(secret); err != nil {
		return Key{}, fmt.Errorf("codec: generate key %q: %w", id, err)
	}
	return Key{ID: id, Secret: secret}, nil
}

// KeyLine is key as a key file's line, without the newline.
func KeyLine(k Key) string { return k.ID + " " + base64.StdEncoding.EncodeToString(k.Secret) }

// EnsureKeysFile returns the keys in path, first writing there (mode 0600)
// a new key with the given id if the file does not exist.
func EnsureKeysFile(path, id string) (*Keyring, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		k, err := NewKey(id)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("codec: create directory for key file %s: %w", path, err)
		}
		body := "# feedpipe payload keys: `<id> <base64 of 32 bytes>`; the first line encrypts.\n" + KeyLine(k) + "\n"
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			return nil, fmt.Errorf("codec: write key file %s: %w", path, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("codec: key file %s: %w", path, err)
	}
	return LoadKeysFile(path)
}
