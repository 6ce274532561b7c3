package codec

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"
)

func key(t *testing.T, id string) Key {
	t.Helper()
	k, err := NewKey(id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ring(t *testing.T, keys ...Key) *Keyring {
	t.Helper()
	r, err := NewKeyring("test", keys...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

type feedInput struct {
	Bucket, Key string
}

func TestRoundTripHidesTheValueAndNamesTheKey(t *testing.T) {
	c := New(ring(t, key(t, "k1")))
	dc := DataConverter(c)
	p, err := dc.ToPayload(feedInput{Bucket: "secret-bucket", Key: "customers/secret.ndjson"})
	if err != nil {
		t.Fatal(err)
	}
	if string(p.Metadata[converter.MetadataEncoding]) != Encoding || string(p.Metadata[MetadataKeyID]) != "k1" {
		t.Errorf("metadata = %v, want encoding %s and key id k1", p.Metadata, Encoding)
	}
	if bytes.Contains(p.Data, []byte("secret")) || bytes.Contains(p.Data, []byte("json/plain")) {
		t.Error("the encrypted payload holds plaintext")
	}
	var got feedInput
	if err := dc.FromPayload(p, &got); err != nil {
		t.Fatal(err)
	}
	if got.Bucket != "secret-bucket" || got.Key != "customers/secret.ndjson" {
		t.Errorf("decoded %+v", got)
	}
}

func TestUnencryptedPayloadsPassThrough(t *testing.T) {
	plain, err := converter.GetDefaultDataConverter().ToPayload("before encryption")
	if err != nil {
		t.Fatal(err)
	}
	var s string
	if err := DataConverter(New(ring(t, key(t, "k1")))).FromPayload(plain, &s); err != nil || s != "before encryption" {
		t.Fatalf("old payload: %q, %v", s, err)
	}
}

func TestRotationDecryptsWithOldKeysAndEncryptsWithTheFirst(t *testing.T) {
	old, cur := key(t, "2026-01"), key(t, "2026-06")
	enc, err := New(ring(t, old)).Encode([]*commonpb.Payload{{Data: []byte("x")}})
	if err != nil {
		t.Fatal(err)
	}
	rotated := New(ring(t, cur, old))
	dec, err := rotated.Decode(enc)
	if err != nil || string(dec[0].Data) != "x" {
		t.Fatalf("decode with the old key kept: %v", err)
	}
	again, _ := rotated.Encode(dec)
	if id := string(again[0].Metadata[MetadataKeyID]); id != "2026-06" {
		t.Errorf("encrypted with %q, want the first key 2026-06", id)
	}
	_, err = New(ring(t, cur)).Decode(enc)
	if err == nil || !strings.Contains(err.Error(), `"2026-01"`) || !strings.Contains(err.Error(), "test") {
		t.Errorf("missing key: %v; want the key id and where to add it", err)
	}
	// Same id, other bytes: no silent garbage.
	if _, err := New(ring(t, Key{ID: "2026-01", Secret: cur.Secret})).Decode(enc); err == nil {
		t.Error("a payload decrypted under the wrong key bytes")
	}
}

func TestKeysFromEnv(t *testing.T) {
	k1, k2 := key(t, "k1"), key(t, "k2")
	dir := t.TempDir()
	file := filepath.Join(dir, "keys")
	if err := os.WriteFile(file, []byte("# comment\n\n"+KeyLine(k2)+"\n"+KeyLine(k1)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	r, err := KeysFromEnv(env(map[string]string{EnvKeysFile: file}))
	if err != nil || r.EncryptingID() != "k2" || len(r.IDs()) != 2 {
		t.Fatalf("file: %v, %v", r, err)
	}
	r, err = KeysFromEnv(env(map[string]string{EnvKey: "k1:" + base64.StdEncoding.EncodeToString(k1.Secret)}))
	if err != nil || r.EncryptingID() != "k1" {
		t.Fatalf("single key: %v, %v", r, err)
	}
	if r, err := KeysFromEnv(env(nil)); r != nil || err != nil {
		t.Fatalf("no env: %v, %v", r, err)
	}
	for name, c := range map[string]struct {
		env  map[string]string
		file string
		want string
	}{
		"missing file": {env: map[string]string{EnvKeysFile: filepath.Join(dir, "nope")}, want: "cannot read the key file"},
		"short key":    {file: "k " + base64.StdEncoding.EncodeToString([]byte("short")), want: "is 5 bytes; AES-256 needs exactly 32"},
		"not base64":   {file: "k !!!", want: "not standard base64"},
		"one field":    {file: "lonely", want: "want `<id> <base64 key>`"},
		"empty":        {file: "# nothing\n", want: "holds no key"},
		"duplicate":    {file: KeyLine(k1) + "\n" + KeyLine(k1), want: "appears twice"},
		"both":         {env: map[string]string{EnvKeysFile: file, EnvKey: "k:x"}, want: "set one"},
		"env no colon": {env: map[string]string{EnvKey: "abc"}, want: "found no ':'"},
		"env short":    {env: map[string]string{EnvKey: "k:" + base64.StdEncoding.EncodeToString(make([]byte, 16))}, want: "is 16 bytes"},
	} {
		e := c.env
		if c.file != "" {
			p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
			if err := os.WriteFile(p, []byte(c.file), 0o600); err != nil {
				t.Fatal(err)
			}
			e = map[string]string{EnvKeysFile: p}
		}
		if _, err := KeysFromEnv(env(e)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to say %q", name, err, c.want)
		}
	}
}

func TestEnsureKeysFileWritesOnceAndKeeps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "codec-keys")
	a, err := EnsureKeysFile(path, "local")
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v, %v", st, err)
	}
	b, err := EnsureKeysFile(path, "other")
	if err != nil || b.EncryptingID() != "local" || !bytes.Equal(a.keys[0].Secret, b.keys[0].Secret) {
		t.Fatalf("second call replaced the key: %v", err)
	}
}

func TestHandlerDecodesAndAnswersCORS(t *testing.T) {
	c := New(ring(t, key(t, "k1")))
	origin := "http://127.0.0.1:8233"
	srv := httptest.NewServer(Handler(c, []string{origin}))
	defer srv.Close()

	enc, err := DataConverter(c).ToPayloads("feed/feedpipe-source/customers/a.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	body, err := protojson.Marshal(enc)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/decode", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Namespace", "default")
	req.Header.Set("Origin", origin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got bytes.Buffer
	_, _ = got.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != origin {
		t.Fatalf("decode: %s, allow-origin %q: %s", resp.Status, resp.Header.Get("Access-Control-Allow-Origin"), got.String())
	}
	var dec commonpb.Payloads
	if err := protojson.Unmarshal(got.Bytes(), &dec); err != nil {
		t.Fatal(err)
	}
	var s string
	if err := converter.GetDefaultDataConverter().FromPayload(dec.Payloads[0], &s); err != nil || s != "feed/feedpipe-source/customers/a.ndjson" {
		t.Fatalf("decoded %q, %v", s, err)
	}

	// /{namespace}/encode, the other layout, works too.
	req, _ = http.NewRequest(http.MethodPost, srv.URL+"/default/encode", bytes.NewReader(body))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("encode: %v %v", resp, err)
	}

	pre, _ := http.NewRequest(http.MethodOptions, srv.URL+"/decode", nil)
	pre.Header.Set("Origin", origin)
	pre.Header.Set("Access-Control-Request-Method", "POST")
	pre.Header.Set("Access-Control-Request-Headers", "content-type,x-namespace")
	resp, err = http.DefaultClient.Do(pre)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers"))
	if resp.StatusCode >= 300 || resp.Header.Get("Access-Control-Allow-Origin") != origin ||
		!strings.Contains(h, "content-type") || !strings.Contains(h, "x-namespace") || !strings.Contains(h, "authorization") ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") {
		t.Errorf("preflight: %s %v", resp.Status, resp.Header)
	}

	pre.Header.Set("Origin", "http://evil.example")
	resp, err = http.DefaultClient.Do(pre)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Error("CORS allowed an origin not configured")
	}
}
