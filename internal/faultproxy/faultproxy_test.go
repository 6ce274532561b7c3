package faultproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// seen is a request as the fake backend received it.
type seen struct {
	Method, Path, Query, Target, Host string
	Header                            http.Header
	Body                              []byte
	Data                              []string // PutRecords entries' data
}

// smallSize is the size of the objects whose key ends in "/small"; the
// others are 64 KiB.
const smallSize = 100

// backend is a fake AWS endpoint: path-style S3 objects and listings, and
// Kinesis PutRecords / PutRecord.
type backend struct {
	object []byte
	url    string

	mu   sync.Mutex
	reqs []seen
}

func newBackend(t *testing.T) *backend {
	t.Helper()
	b := &backend{object: bytes.Repeat([]byte("0123456789abcdef"), 4096)} // 64 KiB
	srv := httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(srv.Close)
	b.url = srv.URL
	return b
}

func (b *backend) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s := seen{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Target: r.Header.Get("X-Amz-Target"), Host: r.Host, Header: r.Header.Clone(), Body: body}
	var req struct{ Records []struct{ Data []byte } }
	var reqErr error
	if s.Target == "Kinesis_20131202.PutRecords" {
		if reqErr = json.Unmarshal(body, &req); reqErr == nil {
			for _, rec := range req.Records {
				s.Data = append(s.Data, string(rec.Data))
			}
		}
	}
	// Recorded before the response: a client that has its answer must find
	// its request here.
	b.mu.Lock()
	b.reqs = append(b.reqs, s)
	b.mu.Unlock()
	switch {
	case s.Target == "Kinesis_20131202.PutRecords":
		if reqErr != nil {
			http.Error(w, reqErr.Error(), http.StatusBadRequest)
			return
		}
		type entry struct{ SequenceNumber, ShardId string }
		out := struct {
			FailedRecordCount int
			Records           []entry
			EncryptionType    string
		}{EncryptionType: "NONE"}
		for _, rec := range req.Records {
			out.Records = append(out.Records, entry{"seq-" + string(rec.Data), "shardId-000000000000"})
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_ = json.NewEncoder(w).Encode(out)
	case s.Target == "Kinesis_20131202.PutRecord":
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_, _ = io.WriteString(w, `{"SequenceNumber":"1","ShardId":"shardId-000000000000"}`)
	case s.Target != "":
		http.Error(w, "unknown target "+s.Target, http.StatusBadRequest)
	case r.Method == http.MethodGet && r.URL.Query().Get("list-type") == "2":
		w.Header().Set("Content-Type", "application/xml")
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>%s</Name><Prefix></Prefix><KeyCount>1</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated><Contents><Key>feed.ndjson</Key><Size>%d</Size></Contents></ListBucketResult>`, strings.Trim(r.URL.Path, "/"), len(b.object))
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		obj := b.object
		if strings.HasSuffix(r.URL.Path, "/small") {
			obj = obj[:smallSize]
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(obj)))
		w.Header().Set("ETag", `"etag"`)
		if r.Method == http.MethodGet {
			_, _ = w.Write(obj)
		}
	case r.Method == http.MethodPut:
		w.Header().Set("ETag", `"etag"`)
	case r.Method == http.MethodDelete:
		w.WriteHeader(http.StatusNoContent)
	default:
		http.Error(w, "unexpected "+r.Method, http.StatusMethodNotAllowed)
	}
}

// seen returns the requests received so far that match.
func (b *backend) seen(match func(seen) bool) []seen {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []seen
	for _, s := range b.reqs {
		if match == nil || match(s) {
			out = append(out, s)
		}
	}
	return out
}

func isGet(s seen) bool  { return s.Method == http.MethodGet && s.Query != "list-type=2" }
func isList(s seen) bool { return s.Method == http.MethodGet && s.Query == "list-type=2" }
func isPuts(s seen) bool { return s.Target == "Kinesis_20131202.PutRecords" }

// setup starts a backend and a proxy in front of it.
func setup(t *testing.T, cfg Config) (*Proxy, *backend, string) {
	t.Helper()
	b := newBackend(t)
	target, err := url.Parse(b.url)
	if err != nil {
		t.Fatal(err)
	}
	p, proxyURL, stop, err := Start(t.Context(), target, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return p, b, proxyURL
}

func awsConfig() aws.Config {
	return aws.Config{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDFAULTPROXY", "secret", ""),
		RetryMaxAttempts: 1, // the faults must reach the caller
	}
}

func s3Client(endpoint string) *s3.Client {
	return s3.NewFromConfig(awsConfig(), func(o *s3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = true
	})
}

func kinesisClient(endpoint string) *kinesis.Client {
	return kinesis.NewFromConfig(awsConfig(), func(o *kinesis.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

func putRecords(ctx context.Context, kin *kinesis.Client, data ...string) (*kinesis.PutRecordsOutput, error) {
	in := &kinesis.PutRecordsInput{StreamName: aws.String("feed")}
	for _, d := range data {
		in.Records = append(in.Records, ktypes.PutRecordsRequestEntry{Data: []byte(d), PartitionKey: aws.String(d)})
	}
	return kin.PutRecords(ctx, in)
}

func getObject(ctx context.Context, c *s3.Client, bucket, key string) ([]byte, error) {
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

func listObjects(ctx context.Context, c *s3.Client, bucket string) error {
	_, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	return err
}

// checkAPIError fails t unless err is an AWS API error with code and status.
func checkAPIError(t *testing.T, err error, code string, status int) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v, want API error %s", err, code)
	}
	if ae.ErrorCode() != code {
		t.Errorf("error code %q (%v), want %q", ae.ErrorCode(), err, code)
	}
	var re *awshttp.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v has no HTTP response", err)
	}
	if re.HTTPStatusCode() != status {
		t.Errorf("HTTP status %d, want %d", re.HTTPStatusCode(), status)
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestPutRecordsFailEvery(t *testing.T) {
	p, b, u := setup(t, Config{Kinesis: KinesisFaults{FailEvery: 3}})
	kin := kinesisClient(u)
	data := []string{"r0", "r1", "r2", "r3", "r4", "r5", "r6"}
	out, err := putRecords(t.Context(), kin, data...)
	if err != nil {
		t.Fatal(err)
	}
	failed := []int{0, 3, 6}
	if got := aws.ToInt32(out.FailedRecordCount); got != int32(len(failed)) {
		t.Errorf("FailedRecordCount %d, want %d", got, len(failed))
	}
	if len(out.Records) != len(data) {
		t.Fatalf("%d result entries, want %d", len(out.Records), len(data))
	}
	for i, e := range out.Records {
		if slices.Contains(failed, i) {
			if aws.ToString(e.ErrorCode) != "ProvisionedThroughputExceededException" || !strings.Contains(aws.ToString(e.ErrorMessage), "(injected)") || e.SequenceNumber != nil {
				t.Errorf("entry %d = {%s %q seq %q}, want an injected ProvisionedThroughputExceededException", i, aws.ToString(e.ErrorCode), aws.ToString(e.ErrorMessage), aws.ToString(e.SequenceNumber))
			}
		} else if e.ErrorCode != nil || aws.ToString(e.SequenceNumber) != "seq-"+data[i] {
			t.Errorf("entry %d = {%s seq %q}, want the backend's seq-%s", i, aws.ToString(e.ErrorCode), aws.ToString(e.SequenceNumber), data[i])
		}
	}
	calls := b.seen(isPuts)
	if len(calls) != 1 || !slices.Equal(calls[0].Data, []string{"r1", "r2", "r4", "r5"}) {
		t.Errorf("backend saw %+v, want one call with r1 r2 r4 r5", calls)
	}
	if st := p.Stats(); st.PutRecordsCalls != 1 || st.ThrottledCalls != 0 || st.FailedEntries != 3 {
		t.Errorf("stats %+v, want 1 call, 0 throttled, 3 failed entries", st)
	}

	// A call of one entry is never failed.
	out, err = putRecords(t.Context(), kin, "solo")
	if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
		t.Errorf("single-entry call: %v, failed %d; want it forwarded", err, aws.ToInt32(out.FailedRecordCount))
	}
}

func TestPutRecordsFailFraction(t *testing.T) {
	p, b, u := setup(t, Config{Seed: 7, Kinesis: KinesisFaults{FailFraction: 0.5}})
	kin := kinesisClient(u)
	var want []string
	totalFailed := 0
	for call := range 10 {
		var data []string
		for i := range 10 {
			data = append(data, fmt.Sprintf("c%d-e%d", call, i))
		}
		out, err := putRecords(t.Context(), kin, data...)
		if err != nil {
			t.Fatal(err)
		}
		failed := 0
		for i, e := range out.Records {
			switch {
			case aws.ToString(e.ErrorCode) == "ProvisionedThroughputExceededException":
				failed++
			case aws.ToString(e.SequenceNumber) == "seq-"+data[i]:
				want = append(want, data[i])
			default:
				t.Errorf("call %d entry %d: unexpected %+v", call, i, e)
			}
		}
		if int(aws.ToInt32(out.FailedRecordCount)) != failed || failed == len(data) {
			t.Errorf("call %d: FailedRecordCount %d, %d entries failed of %d", call, aws.ToInt32(out.FailedRecordCount), failed, len(data))
		}
		totalFailed += failed
	}
	var got []string
	for _, s := range b.seen(isPuts) {
		got = append(got, s.Data...)
	}
	if !slices.Equal(got, want) {
		t.Errorf("backend saw %v, want exactly the entries reported successful %v", got, want)
	}
	if totalFailed < 20 || totalFailed > 80 {
		t.Errorf("%d of 100 entries failed at fraction 0.5", totalFailed)
	}
	if st := p.Stats(); st.FailedEntries != totalFailed || st.PutRecordsCalls != 10 {
		t.Errorf("stats %+v, want %d failed entries in 10 calls", st, totalFailed)
	}

	// At fraction 1 every call still gets one entry through.
	if err := p.SetConfig(Config{Kinesis: KinesisFaults{FailFraction: 1}}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 2, 5} {
		data := make([]string, n)
		for i := range data {
			data[i] = fmt.Sprintf("all%d-%d", n, i)
		}
		out, err := putRecords(t.Context(), kin, data...)
		if err != nil {
			t.Fatal(err)
		}
		if got := aws.ToInt32(out.FailedRecordCount); got != int32(n-1) {
			t.Errorf("%d entries at fraction 1: %d failed, want %d", n, got, n-1)
		}
	}
}

func TestPutRecordsThrottleEvery(t *testing.T) {
	p, b, u := setup(t, Config{Kinesis: KinesisFaults{ThrottleEvery: 2}})
	kin := kinesisClient(u)
	for call := 1; call <= 4; call++ {
		_, err := putRecords(t.Context(), kin, "a", "b")
		if call%2 == 1 {
			if err != nil {
				t.Errorf("call %d: %v", call, err)
			}
			continue
		}
		var pe *ktypes.ProvisionedThroughputExceededException
		if !errors.As(err, &pe) {
			t.Errorf("call %d: err = %v, want ProvisionedThroughputExceededException", call, err)
			continue
		}
		checkAPIError(t, err, "ProvisionedThroughputExceededException", http.StatusBadRequest)
	}
	// PutRecord (singular) is not a PutRecords call.
	for range 2 {
		if _, err := kin.PutRecord(t.Context(), &kinesis.PutRecordInput{StreamName: aws.String("feed"), Data: []byte("x"), PartitionKey: aws.String("x")}); err != nil {
			t.Errorf("PutRecord: %v", err)
		}
	}
	if n := len(b.seen(isPuts)); n != 2 {
		t.Errorf("backend saw %d PutRecords calls, want the 2 not throttled", n)
	}
	if st := p.Stats(); st.PutRecordsCalls != 4 || st.ThrottledCalls != 2 || st.FailedEntries != 0 {
		t.Errorf("stats %+v, want 4 calls, 2 throttled", st)
	}
}

func TestS3GetError(t *testing.T) {
	for _, tc := range []struct {
		code   string
		status int
	}{{SlowDown, http.StatusServiceUnavailable}, {InternalError, http.StatusInternalServerError}} {
		t.Run(tc.code, func(t *testing.T) {
			p, b, u := setup(t, Config{S3Get: S3Faults{ErrorFraction: 1, ErrorCode: tc.code}})
			c := s3Client(u)
			_, err := getObject(t.Context(), c, "src", "feed.ndjson")
			checkAPIError(t, err, tc.code, tc.status)
			if n := len(b.seen(isGet)); n != 0 {
				t.Errorf("backend saw %d GETs, want none", n)
			}
			// LIST and HEAD are not faulted by S3Get.
			if err := listObjects(t.Context(), c, "src"); err != nil {
				t.Errorf("ListObjectsV2: %v", err)
			}
			if _, err := c.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String("src"), Key: aws.String("feed.ndjson")}); err != nil {
				t.Errorf("HeadObject: %v", err)
			}
			if st := p.Stats(); st.GetErrors != 1 || st.ListErrors != 0 {
				t.Errorf("stats %+v, want 1 GET error, no LIST error", st)
			}
		})
	}
}

func TestS3ListError(t *testing.T) {
	p, b, u := setup(t, Config{S3List: S3Faults{ErrorFraction: 1, ErrorCode: InternalError}})
	c := s3Client(u)
	checkAPIError(t, listObjects(t.Context(), c, "src"), InternalError, http.StatusInternalServerError)
	if n := len(b.seen(isList)); n != 0 {
		t.Errorf("backend saw %d LISTs, want none", n)
	}
	if got, err := getObject(t.Context(), c, "src", "feed.ndjson"); err != nil || !bytes.Equal(got, b.object) {
		t.Errorf("GetObject: %d bytes, %v; want the whole object", len(got), err)
	}
	if st := p.Stats(); st.ListErrors != 1 || st.GetErrors != 0 {
		t.Errorf("stats %+v, want 1 LIST error, no GET error", st)
	}
}

// A fraction of the GETs fail, with both codes when none is chosen, and the
// rest reach the backend; concurrent requests share the counters safely.
func TestS3ErrorFraction(t *testing.T) {
	p, b, u := setup(t, Config{Seed: 3, S3Get: S3Faults{ErrorFraction: 0.5}})
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 50 {
				res, err := http.Get(fmt.Sprintf("%s/src/obj-%d-%d", u, w, i))
				if err != nil {
					t.Error(err)
					return
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK && (res.Header.Get("Content-Type") != "application/xml" || !bytes.Contains(body, []byte("<Error><Code>"))) {
					t.Errorf("status %d with %s body %q, want an S3 XML error", res.StatusCode, res.Header.Get("Content-Type"), body)
				}
				mu.Lock()
				codes[res.StatusCode]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	failed := codes[http.StatusServiceUnavailable] + codes[http.StatusInternalServerError]
	if codes[http.StatusServiceUnavailable] == 0 || codes[http.StatusInternalServerError] == 0 || failed < 50 || failed > 150 {
		t.Errorf("statuses %v of 200 GETs at fraction 0.5, want about half failed with both 503 and 500", codes)
	}
	if st := p.Stats(); st.GetErrors != failed {
		t.Errorf("stats %+v, want %d GET errors", st, failed)
	}
	if n := len(b.seen(isGet)); n != codes[http.StatusOK] {
		t.Errorf("backend saw %d GETs, want the %d that succeeded", n, codes[http.StatusOK])
	}
}

func TestS3Hold(t *testing.T) {
	const minHold, maxHold = 50 * time.Millisecond, 100 * time.Millisecond
	hold := S3Faults{HoldFraction: 1, HoldMin: minHold, HoldMax: maxHold}
	p, b, u := setup(t, Config{S3Get: hold, S3List: hold})
	c := s3Client(u)

	start := time.Now()
	got, err := getObject(t.Context(), c, "src", "feed.ndjson")
	if elapsed := time.Since(start); err != nil || !bytes.Equal(got, b.object) || elapsed < minHold {
		t.Errorf("held GetObject: %d bytes, %v after %v; want the whole object after at least %v", len(got), err, elapsed, minHold)
	}
	start = time.Now()
	err = listObjects(t.Context(), c, "src")
	if elapsed := time.Since(start); err != nil || elapsed < minHold {
		t.Errorf("held ListObjectsV2: %v after %v; want success after at least %v", err, elapsed, minHold)
	}
	if st := p.Stats(); st.GetHolds != 1 || st.ListHolds != 1 || st.Abandoned != 0 {
		t.Errorf("stats %+v, want 1 GET and 1 LIST held", st)
	}

	// The range defaults to 2–5 s.
	def := New(&url.URL{Scheme: "http", Host: "127.0.0.1:1"}, Config{S3Get: S3Faults{HoldFraction: 1}}).Config().S3Get
	if def.HoldMin != 2*time.Second || def.HoldMax != 5*time.Second {
		t.Errorf("default hold range %v–%v, want 2s–5s", def.HoldMin, def.HoldMax)
	}
}

func TestResetMidBody(t *testing.T) {
	p, b, u := setup(t, Config{Reset: ResetFaults{Bucket: "src", Fraction: 1}})
	c := s3Client(u)

	// A body larger than the server's buffers, and one smaller (the part
	// sent must be flushed before the connection is aborted).
	for i, obj := range [][]byte{b.object, b.object[:smallSize]} {
		key := "feed.ndjson"
		if len(obj) == smallSize {
			key = "small"
		}
		out, err := c.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String("src"), Key: aws.String(key)})
		if err != nil {
			t.Fatalf("GetObject %s: %v, want the headers before the reset", key, err)
		}
		got, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err == nil {
			t.Fatalf("read %d bytes of a reset body without error", len(got))
		}
		if len(got) == 0 || len(got) >= len(obj) || !bytes.Equal(got, obj[:len(got)]) {
			t.Errorf("read %d bytes before the reset, want a non-empty proper prefix of the %d", len(got), len(obj))
		}
		t.Logf("%s: reset after %d of %d bytes: %v", key, len(got), len(obj), err)
		if st := p.Stats(); st.Resets != i+1 {
			t.Errorf("stats %+v, want %d resets", st, i+1)
		}
	}

	// Other buckets, and HEAD on the chosen one, are left alone.
	if got, err := getObject(t.Context(), c, "dst", "feed.ndjson"); err != nil || !bytes.Equal(got, b.object) {
		t.Errorf("GetObject on another bucket: %d bytes, %v; want the whole object", len(got), err)
	}
	if _, err := c.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String("src"), Key: aws.String("feed.ndjson")}); err != nil {
		t.Errorf("HeadObject: %v", err)
	}
	if st := p.Stats(); st.Resets != 2 {
		t.Errorf("stats %+v, want still 2 resets", st)
	}
}

func TestHoldRule(t *testing.T) {
	const d = 100 * time.Millisecond
	p, b, u := setup(t, Config{})
	p.Hold(func(r *http.Request) bool {
		return r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/src/")
	}, d)
	c := s3Client(u)

	start := time.Now()
	got, err := getObject(t.Context(), c, "src", "feed.ndjson")
	if elapsed := time.Since(start); err != nil || !bytes.Equal(got, b.object) || elapsed < d {
		t.Errorf("held GetObject: %d bytes, %v after %v; want the whole object after at least %v", len(got), err, elapsed, d)
	}
	if _, err := getObject(t.Context(), c, "dst", "feed.ndjson"); err != nil {
		t.Errorf("unmatched GetObject: %v", err)
	}
	if st := p.Stats(); st.Holds != 1 || st.Abandoned != 0 {
		t.Errorf("stats %+v, want 1 hold", st)
	}
	p.ClearHolds()
	if _, err := getObject(t.Context(), c, "src", "feed.ndjson"); err != nil {
		t.Errorf("GetObject after ClearHolds: %v", err)
	}
	if st := p.Stats(); st.Holds != 1 {
		t.Errorf("stats %+v, want still 1 hold after ClearHolds", st)
	}
}

// A held request whose client gives up is never forwarded: a killed
// worker's call must not reach the backend afterwards.
func TestHeldRequestAbandoned(t *testing.T) {
	const hold = 400 * time.Millisecond
	for _, tc := range []struct {
		name string
		cfg  Config
		rule bool
		call func(ctx context.Context, u string) error
	}{
		{"hold rule GET", Config{}, true, func(ctx context.Context, u string) error {
			_, err := getObject(ctx, s3Client(u), "src", "feed.ndjson")
			return err
		}},
		{"hold rule POST with body", Config{}, true, func(ctx context.Context, u string) error {
			_, err := kinesisClient(u).PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("feed"), Data: []byte("late"), PartitionKey: aws.String("k")})
			return err
		}},
		{"S3 hold", Config{S3Get: S3Faults{HoldFraction: 1, HoldMin: hold, HoldMax: hold}}, false, func(ctx context.Context, u string) error {
			_, err := getObject(ctx, s3Client(u), "src", "feed.ndjson")
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, b, u := setup(t, tc.cfg)
			if tc.rule {
				p.Hold(func(*http.Request) bool { return true }, hold)
			}
			start := time.Now()
			ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
			defer cancel()
			if err := tc.call(ctx, u); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("call = %v, want the client's deadline exceeded", err)
			}
			waitFor(t, "the proxy to see the client gone", func() bool { return p.Stats().Abandoned == 1 })
			time.Sleep(time.Until(start.Add(hold + 300*time.Millisecond))) // past the hold
			if got := b.seen(nil); len(got) != 0 {
				t.Errorf("backend saw %d requests (%s %s), want none", len(got), got[0].Method, got[0].Path)
			}
		})
	}
}

// Requests that draw no fault reach the backend with their headers, Host and
// body unchanged, so signatures stay valid; HEAD, PUT and DELETE are never
// faulted.
func TestPassThrough(t *testing.T) {
	b := newBackend(t)
	target, err := url.Parse(b.url)
	if err != nil {
		t.Fatal(err)
	}
	p := New(target, Config{
		S3Get:  S3Faults{ErrorFraction: 1},
		S3List: S3Faults{ErrorFraction: 1},
		Reset:  ResetFaults{Fraction: 1},
	})
	var mu sync.Mutex
	var in []*http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		in = append(in, r.Clone(context.Background()))
		mu.Unlock()
		p.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c := s3Client(srv.URL)

	payload := []byte(strings.Repeat("line\n", 1000))
	if _, err := c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String("src"), Key: aws.String("in/feed.ndjson"), Body: bytes.NewReader(payload)}); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	if _, err := c.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String("src"), Key: aws.String("in/feed.ndjson")}); err != nil {
		t.Errorf("HeadObject: %v", err)
	}
	if _, err := c.DeleteObject(t.Context(), &s3.DeleteObjectInput{Bucket: aws.String("src"), Key: aws.String("in/feed.ndjson")}); err != nil {
		t.Errorf("DeleteObject: %v", err)
	}
	got := b.seen(nil)
	if len(got) != 3 || len(in) != 3 {
		t.Fatalf("backend saw %d requests of the %d sent, want 3", len(got), len(in))
	}
	for i, s := range got {
		r := in[i]
		if s.Method != r.Method || s.Path != r.URL.Path || s.Query != r.URL.RawQuery || s.Host != r.Host {
			t.Errorf("request %d: backend saw %s %s?%s Host %s, client sent %s %s?%s Host %s", i, s.Method, s.Path, s.Query, s.Host, r.Method, r.URL.Path, r.URL.RawQuery, r.Host)
		}
		for _, h := range []string{"Authorization", "X-Amz-Date", "X-Amz-Content-Sha256", "Content-Length", "Content-Type"} {
			if s.Header.Get(h) != r.Header.Get(h) {
				t.Errorf("request %d header %s: backend saw %q, client sent %q", i, h, s.Header.Get(h), r.Header.Get(h))
			}
		}
		if !strings.HasPrefix(s.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
			t.Errorf("request %d: Authorization %q is not SigV4", i, s.Header.Get("Authorization"))
		}
	}
	if !bytes.Contains(got[0].Body, payload) {
		t.Errorf("PutObject body: backend saw %d bytes not containing the %d sent", len(got[0].Body), len(payload))
	}
	if st := p.Stats(); st != (Stats{}) {
		t.Errorf("stats %+v, want nothing injected", st)
	}
}

func TestSetConfig(t *testing.T) {
	p, _, u := setup(t, Config{})
	c := s3Client(u)
	if _, err := getObject(t.Context(), c, "src", "k"); err != nil {
		t.Fatalf("no faults: %v", err)
	}
	if err := p.SetConfig(Config{S3Get: S3Faults{ErrorFraction: 1, ErrorCode: SlowDown}}); err != nil {
		t.Fatal(err)
	}
	_, err := getObject(t.Context(), c, "src", "k")
	checkAPIError(t, err, SlowDown, http.StatusServiceUnavailable)
	if err := p.SetConfig(Config{S3Get: S3Faults{ErrorFraction: 2}}); err == nil {
		t.Error("SetConfig accepted ErrorFraction 2")
	}
	if f := p.Config().S3Get.ErrorFraction; f != 1 {
		t.Errorf("a refused SetConfig changed ErrorFraction to %v", f)
	}
	if err := p.SetConfig(Config{}); err != nil {
		t.Fatal(err)
	}
	if _, err := getObject(t.Context(), c, "src", "k"); err != nil {
		t.Errorf("faults off again: %v", err)
	}
	if st := p.Stats(); st.GetErrors != 1 {
		t.Errorf("stats %+v, want 1 GET error", st)
	}
}

func TestValidate(t *testing.T) {
	valid := []Config{
		{},
		{Seed: 1, Kinesis: KinesisFaults{ThrottleEvery: 4, FailEvery: 7, FailFraction: 0.5}},
		{S3Get: S3Faults{ErrorFraction: 1, ErrorCode: InternalError, HoldFraction: 0.1, HoldMin: time.Second, HoldMax: time.Second}},
		{S3List: S3Faults{HoldFraction: 1, HoldMax: time.Second}},
		{Reset: ResetFaults{Bucket: "src", Fraction: 0.5}},
	}
	for _, c := range valid {
		if err := c.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v", c, err)
		}
	}
	invalid := []Config{
		{Kinesis: KinesisFaults{ThrottleEvery: -1}},
		{Kinesis: KinesisFaults{FailEvery: -1}},
		{Kinesis: KinesisFaults{FailFraction: 1.5}},
		{S3Get: S3Faults{ErrorFraction: -0.1}},
		{S3Get: S3Faults{ErrorCode: "NoSuchKey"}},
		{S3List: S3Faults{HoldFraction: 2}},
		{S3List: S3Faults{HoldMin: time.Second}},
		{S3Get: S3Faults{HoldMin: -time.Second, HoldMax: time.Second}},
		{Reset: ResetFaults{Fraction: 50}},
	}
	for _, c := range invalid {
		if err := c.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want an error", c)
		}
	}
}

func TestStart(t *testing.T) {
	b := newBackend(t)
	target, err := url.Parse(b.url)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := Start(t.Context(), target, Config{Reset: ResetFaults{Fraction: 2}}); err == nil {
		t.Error("Start accepted an invalid config")
	}
	if _, _, _, err := Start(t.Context(), &url.URL{Path: "relative"}, Config{}); err == nil {
		t.Error("Start accepted a relative target")
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, u, stop, err := Start(ctx, target, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	if host, _, _ := net.SplitHostPort(pu.Host); host != "127.0.0.1" {
		t.Errorf("listening on %s, want 127.0.0.1", pu.Host)
	}
	if _, err := getObject(t.Context(), s3Client(u), "src", "k"); err != nil {
		t.Errorf("GetObject through the proxy: %v", err)
	}
	cancel() // the proxy stops with its context
	waitFor(t, "the proxy to stop", func() bool {
		res, err := http.Get(u + "/src/k")
		if err == nil {
			res.Body.Close()
		}
		return err != nil
	})
	stop() // and stop may still be called
	stop()
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		method, target, path string
		want                 op
		bucket               string
	}{
		{"POST", "Kinesis_20131202.PutRecords", "/", opPutRecords, ""},
		{"POST", "Kinesis_20131202.PutRecord", "/", opOther, ""},
		{"POST", "AWSGlue.GetTable", "/", opOther, ""},
		{"POST", "AmazonSQS.ReceiveMessage", "/", opOther, ""},
		{"GET", "", "/src/a/b.ndjson?x-id=GetObject", opGetObject, "src"},
		{"GET", "", "/src/a/b.ndjson", opGetObject, "src"},
		{"GET", "", "/src/a/b.ndjson?partNumber=1", opGetObject, "src"},
		{"GET", "", "/src/a/b.ndjson?tagging", opOther, ""},
		{"GET", "", "/src/a/b.ndjson?x-id=GetObjectAttributes", opOther, ""},
		{"GET", "", "/src?list-type=2&prefix=a%2F", opListObjects, "src"},
		{"GET", "", "/src/?list-type=2", opListObjects, "src"},
		{"GET", "", "/src", opOther, ""},
		{"GET", "", "/src?location", opOther, ""},
		{"GET", "", "/", opOther, ""},
		{"HEAD", "", "/src/a", opOther, ""},
		{"PUT", "", "/src/a", opOther, ""},
		{"DELETE", "", "/src/a", opOther, ""},
	} {
		r := httptest.NewRequest(tc.method, tc.path, nil)
		if tc.target != "" {
			r.Header.Set("X-Amz-Target", tc.target)
		}
		if got, bucket := classify(r); got != tc.want || bucket != tc.bucket {
			t.Errorf("%s %s (%s) = %v %q, want %v %q", tc.method, tc.path, tc.target, got, bucket, tc.want, tc.bucket)
		}
	}
}
