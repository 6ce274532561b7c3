// Package faultproxy is an HTTP reverse proxy that sits in front of an AWS
// endpoint (the MiniStack emulator, or anything speaking path-style S3 and
// JSON-protocol Kinesis) and injects the faults real AWS produces and no
// emulator does: throttled Kinesis PutRecords calls and entries, S3 GET and
// LIST errors and slow responses, connections reset in the middle of an
// object body, and requests held for a while (during which a client that
// gives up is never forwarded).
//
// Point a client's endpoint (for a worker process, AWS_ENDPOINT_URL) at the
// proxy and every AWS call passes through it. Calls that draw no fault are
// forwarded unchanged by an httputil.ReverseProxy, bodies streamed and headers
// (the SigV4 signature and the Host it signed) intact. Only a PutRecords call
// that loses entries is forwarded with a rewritten body; the backend must
// therefore not check signatures, which MiniStack does not.
//
// Requests are recognised as follows:
//
//   - Kinesis PutRecords: an X-Amz-Target header ending in ".PutRecords".
//   - S3 (path-style only): no X-Amz-Target header and a path /bucket or
//     /bucket/key. GetObject is a GET with a key (and no sub-resource query
//     such as ?acl or ?tagging); ListObjectsV2 is a GET on the bucket with
//     the query list-type=2.
//
// HEAD, PUT, POST and DELETE requests, and every other service, are never
// faulted except by a Hold rule.
package faultproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// S3 error codes the proxy can answer GET and LIST requests with.
const (
	// SlowDown is answered with HTTP 503, as S3 does when throttling.
	SlowDown = "SlowDown"
	// InternalError is answered with HTTP 500.
	InternalError = "InternalError"
)

// Default range of an S3 hold when S3Faults.HoldMin and HoldMax are both zero.
const (
	DefaultHoldMin = 2 * time.Second
	DefaultHoldMax = 5 * time.Second
)

// throughputExceeded is the Kinesis error code of both injected faults.
const throughputExceeded = "ProvisionedThroughputExceededException"

// Config selects the faults to inject. Its zero value injects none; each
// fault is turned on independently by setting its field(s).
type Config struct {
	// Seed seeds the proxy's random source (math/rand/v2 PCG), which draws
	// every fraction-based fault and hold duration, so that a run can be
	// replayed. New reads it; SetConfig ignores it.
	Seed uint64

	// Kinesis faults PutRecords calls.
	Kinesis KinesisFaults

	// S3Get faults GetObject requests.
	S3Get S3Faults

	// S3List faults ListObjectsV2 requests.
	S3List S3Faults

	// Reset cuts GetObject responses off in the middle of the body.
	Reset ResetFaults
}

// KinesisFaults makes Kinesis behave like a stream over its provisioned
// throughput. Failed entries are not forwarded; they are reported in the
// response with ErrorCode ProvisionedThroughputExceededException and
// FailedRecordCount counts them. At least one entry of every call is always
// forwarded, so a client that re-sends its failed entries makes progress.
type KinesisFaults struct {
	// ThrottleEvery refuses every Nth PutRecords call whole with HTTP 400
	// ProvisionedThroughputExceededException (0 = never).
	ThrottleEvery int

	// FailEvery fails, in a call that is not refused whole and has more than
	// one entry, the entries whose index i satisfies i%FailEvery == 0, that
	// is the 1st, the (N+1)th, the (2N+1)th… (0 = never).
	FailEvery int

	// FailFraction fails each entry with this probability, in [0, 1]
	// (0 = never). At 1 every entry but one fails.
	FailFraction float64
}

// S3Faults faults one kind of S3 request (GetObject or ListObjectsV2). Each
// request first draws a hold, then an error; both can hit the same request.
type S3Faults struct {
	// ErrorFraction answers this fraction of requests, in [0, 1], with an S3
	// XML error instead of forwarding them (0 = never).
	ErrorFraction float64

	// ErrorCode is the injected error: SlowDown (503) or InternalError
	// (500). Empty picks one of the two at random for each injected error.
	ErrorCode string

	// HoldFraction holds this fraction of requests, in [0, 1], for a random
	// duration in [HoldMin, HoldMax] before going on (0 = never). A request
	// whose client goes away while held is not forwarded.
	HoldFraction float64

	// HoldMin and HoldMax bound the hold; both zero means DefaultHoldMin to
	// DefaultHoldMax (2–5 s). Otherwise HoldMax must be at least HoldMin.
	HoldMin, HoldMax time.Duration
}

// ResetFaults resets connections in the middle of GetObject bodies: the
// request is forwarded, the status and headers of a 200 or 206 response are
// sent with half of the body (at least one byte), then the connection is
// aborted, so the client's body read fails with an unexpected EOF. Empty
// bodies are never cut.
type ResetFaults struct {
	// Bucket limits the fault to GetObject requests on this bucket; empty
	// means every bucket.
	Bucket string

	// Fraction cuts this fraction of the GetObject responses, in [0, 1]
	// (0 = never).
	Fraction float64
}

// Stats counts what the proxy did. Every count is cumulative since New.
type Stats struct {
	// PutRecordsCalls counts the Kinesis PutRecords calls seen, refused or not.
	PutRecordsCalls int
	// ThrottledCalls counts the PutRecords calls refused whole.
	ThrottledCalls int
	// FailedEntries counts the PutRecords entries not forwarded and reported
	// failed to the client.
	FailedEntries int

	// GetErrors and ListErrors count the GetObject and ListObjectsV2
	// requests answered with an injected error.
	GetErrors, ListErrors int
	// GetHolds and ListHolds count the GetObject and ListObjectsV2 requests
	// held by an S3 hold (whether or not they were forwarded afterwards).
	GetHolds, ListHolds int
	// Resets counts the GetObject responses cut off mid-body.
	Resets int

	// Holds counts the requests held by a Hold rule.
	Holds int
	// Abandoned counts the held requests (by a Hold rule or an S3 hold)
	// whose client went away before the hold ended; none was forwarded.
	Abandoned int

	// ForwardErrors counts the requests the backend could not answer; the
	// client got a 502 Bad Gateway.
	ForwardErrors int
}

// Proxy is an http.Handler forwarding to one AWS endpoint and injecting the
// faults of its Config. It is safe for concurrent use.
type Proxy struct {
	target    *url.URL
	transport *http.Transport
	forward   *httputil.ReverseProxy // requests whose response goes through whole
	cut       *httputil.ReverseProxy // GetObject requests chosen for a reset

	mu    sync.Mutex
	cfg   Config
	rng   *rand.Rand
	holds []holdRule
	stats Stats
}

type holdRule struct {
	match func(*http.Request) bool
	d     time.Duration
}

// New returns a Proxy forwarding to target (scheme and host, and optionally a
// base path) and injecting the faults of cfg. cfg should pass Validate; out
// of range values are clamped to the nearest valid one.
func New(target *url.URL, cfg Config) *Proxy {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil               // talk to the target directly, whatever HTTP_PROXY says
	tr.DisableCompression = true // pass bodies through as the backend sent them
	p := &Proxy{
		target:    target,
		transport: tr,
		cfg:       normalize(cfg),
		rng:       rand.New(rand.NewPCG(cfg.Seed, 0x9e3779b97f4a7c15)),
	}
	p.forward = p.reverseProxy(0)
	// Flush every write, so the part of a body sent before a reset reaches
	// the client before the connection is aborted.
	p.cut = p.reverseProxy(-1)
	return p
}

func (p *Proxy) reverseProxy(flush time.Duration) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(p.target)
			pr.Out.Host = pr.In.Host // keep the Host the client signed
		},
		Transport:      p.transport,
		FlushInterval:  flush,
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.forwardError,
		// Copy errors are expected (injected resets, clients going away);
		// the handler's counters report what matters.
		ErrorLog: log.New(io.Discard, "", 0),
	}
}

// Start serves a new Proxy for target on a free port of 127.0.0.1 and
// returns it with its base URL ("http://127.0.0.1:port"). stop closes the
// listener and every connection at once (held requests included) and may be
// called more than once; the proxy also stops when ctx is done. The contexts
// of requests in flight derive from ctx.
func Start(ctx context.Context, target *url.URL, cfg Config) (p *Proxy, baseURL string, stop func(), err error) {
	if target == nil || target.Scheme == "" || target.Host == "" {
		return nil, "", nil, fmt.Errorf("start fault proxy: target %v is not an absolute URL", target)
	}
	if err := cfg.Validate(); err != nil {
		return nil, "", nil, fmt.Errorf("start fault proxy for %s: %w", target.Redacted(), err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", nil, fmt.Errorf("start fault proxy for %s: listen on 127.0.0.1: %w", target.Redacted(), err)
	}
	p = New(target, cfg)
	srv := &http.Server{
		Handler:           p,
		ReadHeaderTimeout: 30 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln) // returns http.ErrServerClosed once stopped
	}()
	var once sync.Once
	closeAll := func() {
		once.Do(func() {
			_ = srv.Close()
			<-done
			p.transport.CloseIdleConnections()
		})
	}
	stopAfter := context.AfterFunc(ctx, closeAll)
	stop = func() {
		stopAfter()
		closeAll()
	}
	return p, "http://" + ln.Addr().String(), stop, nil
}

// Validate reports the out of range fields of c, all of them.
func (c Config) Validate() error {
	var errs []error
	fraction := func(name string, f float64) {
		if math.IsNaN(f) || f < 0 || f > 1 {
			errs = append(errs, fmt.Errorf("%s %v is not in [0, 1]", name, f))
		}
	}
	if c.Kinesis.ThrottleEvery < 0 {
		errs = append(errs, fmt.Errorf("Kinesis.ThrottleEvery %d is negative", c.Kinesis.ThrottleEvery))
	}
	if c.Kinesis.FailEvery < 0 {
		errs = append(errs, fmt.Errorf("Kinesis.FailEvery %d is negative", c.Kinesis.FailEvery))
	}
	fraction("Kinesis.FailFraction", c.Kinesis.FailFraction)
	for _, s := range []struct {
		name string
		f    S3Faults
	}{{"S3Get", c.S3Get}, {"S3List", c.S3List}} {
		fraction(s.name+".ErrorFraction", s.f.ErrorFraction)
		fraction(s.name+".HoldFraction", s.f.HoldFraction)
		switch s.f.ErrorCode {
		case "", SlowDown, InternalError:
		default:
			errs = append(errs, fmt.Errorf("%s.ErrorCode %q is neither %s nor %s", s.name, s.f.ErrorCode, SlowDown, InternalError))
		}
		if s.f.HoldMin < 0 || s.f.HoldMax < 0 {
			errs = append(errs, fmt.Errorf("%s hold range %v–%v is negative", s.name, s.f.HoldMin, s.f.HoldMax))
		} else if (s.f.HoldMin != 0 || s.f.HoldMax != 0) && s.f.HoldMax < s.f.HoldMin {
			errs = append(errs, fmt.Errorf("%s.HoldMax %v is less than HoldMin %v", s.name, s.f.HoldMax, s.f.HoldMin))
		}
	}
	fraction("Reset.Fraction", c.Reset.Fraction)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid fault proxy config: %w", err)
	}
	return nil
}

// normalize clamps c into range and fills in the default hold ranges.
func normalize(c Config) Config {
	clamp := func(f float64) float64 {
		if math.IsNaN(f) || f < 0 {
			return 0
		}
		return min(f, 1)
	}
	c.Kinesis.ThrottleEvery = max(c.Kinesis.ThrottleEvery, 0)
	c.Kinesis.FailEvery = max(c.Kinesis.FailEvery, 0)
	c.Kinesis.FailFraction = clamp(c.Kinesis.FailFraction)
	for _, s := range []*S3Faults{&c.S3Get, &c.S3List} {
		s.ErrorFraction = clamp(s.ErrorFraction)
		s.HoldFraction = clamp(s.HoldFraction)
		if s.ErrorCode != "" && s.ErrorCode != InternalError {
			s.ErrorCode = SlowDown
		}
		s.HoldMin, s.HoldMax = max(s.HoldMin, 0), max(s.HoldMax, 0)
		if s.HoldMin == 0 && s.HoldMax == 0 {
			s.HoldMin, s.HoldMax = DefaultHoldMin, DefaultHoldMax
		}
		s.HoldMax = max(s.HoldMax, s.HoldMin)
	}
	c.Reset.Fraction = clamp(c.Reset.Fraction)
	return c
}

// SetConfig replaces the faults injected from now on (requests in flight
// keep the ones they drew). Seed is ignored: the random source goes on. An
// invalid cfg is refused and the faults stay as they were.
func (p *Proxy) SetConfig(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("set fault proxy config: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	seed := p.cfg.Seed
	p.cfg = normalize(cfg)
	p.cfg.Seed = seed
	return nil
}

// Config returns the faults currently injected, with default hold ranges
// filled in.
func (p *Proxy) Config() Config {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cfg
}

// Stats returns a copy of the counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Hold holds every request for which match returns true for d before it goes
// on to the faults of the Config and the backend. A request whose client
// goes away while held is not forwarded. The body of a held request is read
// into memory first (this is what lets the proxy see a client that went away
// after sending it). When several rules match, the first added wins. match
// runs concurrently, must not read the body and should be quick.
func (p *Proxy) Hold(match func(*http.Request) bool, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holds = append(p.holds, holdRule{match: match, d: d})
}

// ClearHolds removes every Hold rule. Requests already held stay held.
func (p *Proxy) ClearHolds() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holds = nil
}

type op int

const (
	opOther op = iota
	opPutRecords
	opGetObject
	opListObjects
)

// classify tells which faultable operation r is, and its bucket for S3.
func classify(r *http.Request) (op, string) {
	target := r.Header.Get("X-Amz-Target")
	if target != "" {
		if strings.HasSuffix(target, ".PutRecords") {
			return opPutRecords, ""
		}
		return opOther, ""
	}
	if r.Method != http.MethodGet {
		return opOther, ""
	}
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if bucket == "" {
		return opOther, "" // ListBuckets, or a query-protocol call
	}
	q := r.URL.Query()
	if key == "" {
		if q.Get("list-type") == "2" {
			return opListObjects, bucket
		}
		return opOther, ""
	}
	if id := q.Get("x-id"); id != "" { // aws-sdk-go-v2 names its operation
		if id == "GetObject" {
			return opGetObject, bucket
		}
		return opOther, ""
	}
	for _, sub := range [...]string{"acl", "attributes", "legal-hold", "retention", "tagging", "torrent", "uploadId"} {
		if q.Has(sub) {
			return opOther, ""
		}
	}
	return opGetObject, bucket
}

// plan is what ModifyResponse must do to the response of a forwarded request.
type plan struct {
	put *putPlan // PutRecords entries not forwarded, to report failed
	cut bool     // cut the GetObject body off mid-way
}

type putPlan struct {
	failed []int // indices in the client's call, ascending
	total  int   // entries in the client's call
}

type planKey struct{}

// ServeHTTP forwards r to the target, injecting the faults it draws.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if d, ok := p.matchHold(r); ok {
		var held bool
		if r, held = p.holdHooked(r, d); !held {
			writeAbandoned(w)
			return
		}
	}
	switch o, bucket := classify(r); o {
	case opPutRecords:
		p.putRecords(w, r)
	case opGetObject, opListObjects:
		p.s3Read(w, r, o, bucket)
	default:
		p.forward.ServeHTTP(w, r)
	}
}

func (p *Proxy) matchHold(r *http.Request) (time.Duration, bool) {
	p.mu.Lock()
	rules := p.holds
	p.mu.Unlock()
	for _, h := range rules {
		if h.match(r) {
			return h.d, true
		}
	}
	return 0, false
}

// holdHooked holds r, matched by a Hold rule, for d. It reports false if the
// client went away, in which case r must not be forwarded.
func (p *Proxy) holdHooked(r *http.Request, d time.Duration) (*http.Request, bool) {
	p.mu.Lock()
	p.stats.Holds++
	p.mu.Unlock()
	// Read the body: the server notices a client going away only once the
	// body has been read to its end.
	if r.Body != nil && r.Body != http.NoBody {
		body, err := io.ReadAll(r.Body)
		_ = r.Body.Close()
		if err != nil {
			p.abandoned()
			return r, false
		}
		r = r.Clone(r.Context())
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
	}
	if !sleep(r.Context(), d) {
		p.abandoned()
		return r, false
	}
	return r, true
}

func (p *Proxy) abandoned() {
	p.mu.Lock()
	p.stats.Abandoned++
	p.mu.Unlock()
}

// sleep waits for d and reports whether ctx is still live afterwards.
func sleep(ctx context.Context, d time.Duration) bool {
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	return ctx.Err() == nil
}

// writeAbandoned answers a request not forwarded because its context ended
// while held; normally no client is left to read it.
func writeAbandoned(w http.ResponseWriter) {
	http.Error(w, "faultproxy: request abandoned while held, not forwarded", http.StatusBadGateway)
}

// draw reports true with probability f. p.mu must be held.
func (p *Proxy) draw(f float64) bool {
	return f > 0 && (f >= 1 || p.rng.Float64() < f)
}

func (p *Proxy) putRecords(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	k := p.cfg.Kinesis
	p.stats.PutRecordsCalls++
	throttle := k.ThrottleEvery > 0 && p.stats.PutRecordsCalls%k.ThrottleEvery == 0
	if throttle {
		p.stats.ThrottledCalls++
	}
	p.mu.Unlock()
	if throttle {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Header().Set("X-Amzn-ErrorType", throughputExceeded)
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"__type":"`+throughputExceeded+`","message":"Rate exceeded for stream (injected)"}`)
		return
	}
	if k.FailEvery == 0 && k.FailFraction == 0 {
		p.forward.ServeHTTP(w, r)
		return
	}

	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, fmt.Sprintf("faultproxy: read PutRecords request: %v", err), http.StatusBadRequest)
		return
	}
	var req map[string]json.RawMessage
	var records []json.RawMessage
	if json.Unmarshal(body, &req) != nil || json.Unmarshal(req["Records"], &records) != nil || len(records) == 0 {
		// Not a call we understand: let the backend judge it.
		p.forwardBody(w, r, body, nil)
		return
	}
	fail := p.chooseFailed(records, k)
	if len(fail) == 0 {
		p.forwardBody(w, r, body, nil)
		return
	}
	keep := make([]json.RawMessage, 0, len(records)-len(fail))
	next := 0
	for i, rec := range records {
		if next < len(fail) && fail[next] == i {
			next++
			continue
		}
		keep = append(keep, rec)
	}
	req["Records"], err = json.Marshal(keep)
	if err == nil {
		body, err = json.Marshal(req)
	}
	if err != nil {
		http.Error(w, fmt.Sprintf("faultproxy: rewrite PutRecords request: %v", err), http.StatusInternalServerError)
		return
	}
	p.forwardBody(w, r, body, &plan{put: &putPlan{failed: fail, total: len(records)}})
}

// chooseFailed returns the ascending indices of the entries to fail, never
// all of them.
func (p *Proxy) chooseFailed(records []json.RawMessage, k KinesisFaults) []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	var fail []int
	for i := range records {
		every := k.FailEvery > 0 && len(records) > 1 && i%k.FailEvery == 0
		// Draw for every entry, so the sequence does not depend on FailEvery.
		if frac := p.draw(k.FailFraction); every || frac {
			fail = append(fail, i)
		}
	}
	if len(fail) == len(records) {
		fail = fail[:len(fail)-1] // forward the last entry: progress is always possible
	}
	return fail
}

// forwardBody forwards r with body as its body, and pl for ModifyResponse.
func (p *Proxy) forwardBody(w http.ResponseWriter, r *http.Request, body []byte, pl *plan) {
	ctx := r.Context()
	if pl != nil {
		ctx = context.WithValue(ctx, planKey{}, pl)
	}
	r = r.Clone(ctx)
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.Header.Del("Content-Length")
	if pl != nil && pl.put != nil {
		r.Header.Del("Accept-Encoding") // the response is rewritten: have it uncompressed
	}
	p.forward.ServeHTTP(w, r)
}

func (p *Proxy) s3Read(w http.ResponseWriter, r *http.Request, o op, bucket string) {
	p.mu.Lock()
	f := p.cfg.S3Get
	if o == opListObjects {
		f = p.cfg.S3List
	}
	var hold time.Duration
	holding := p.draw(f.HoldFraction)
	if holding {
		hold = f.HoldMin + time.Duration(p.rng.Int64N(int64(f.HoldMax-f.HoldMin)+1))
		if o == opGetObject {
			p.stats.GetHolds++
		} else {
			p.stats.ListHolds++
		}
	}
	failing := p.draw(f.ErrorFraction)
	code := f.ErrorCode
	if failing && code == "" {
		code = SlowDown
		if p.rng.IntN(2) == 1 {
			code = InternalError
		}
	}
	cut := o == opGetObject && (p.cfg.Reset.Bucket == "" || p.cfg.Reset.Bucket == bucket) && p.draw(p.cfg.Reset.Fraction)
	p.mu.Unlock()

	if holding && !sleep(r.Context(), hold) {
		p.abandoned()
		writeAbandoned(w)
		return
	}
	if failing {
		p.mu.Lock()
		if o == opGetObject {
			p.stats.GetErrors++
		} else {
			p.stats.ListErrors++
		}
		p.mu.Unlock()
		writeS3Error(w, r, code)
		return
	}
	if cut {
		p.cut.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), planKey{}, &plan{cut: true})))
		return
	}
	p.forward.ServeHTTP(w, r)
}

// s3Error is the XML body of an S3 error response.
type s3Error struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string
	Message   string
	Resource  string
	RequestID string `xml:"RequestId"`
}

func writeS3Error(w http.ResponseWriter, r *http.Request, code string) {
	e := s3Error{Code: code, Resource: r.URL.Path, RequestID: "faultproxy-injected"}
	status := http.StatusServiceUnavailable
	e.Message = "Please reduce your request rate. (injected)"
	if code == InternalError {
		status = http.StatusInternalServerError
		e.Message = "We encountered an internal error. Please try again. (injected)"
	}
	b, err := xml.Marshal(e)
	if err != nil { // cannot happen with string fields
		http.Error(w, fmt.Sprintf("faultproxy: encode S3 error: %v", err), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("X-Amz-Request-Id", e.RequestID)
	w.WriteHeader(status)
	_, _ = io.WriteString(w, xml.Header)
	_, _ = w.Write(b)
}

// modifyResponse applies the plan of the request to its response.
func (p *Proxy) modifyResponse(res *http.Response) error {
	pl, _ := res.Request.Context().Value(planKey{}).(*plan)
	switch {
	case pl == nil:
		return nil
	case pl.put != nil:
		return p.mergePutRecords(res, pl.put)
	case pl.cut:
		if (res.StatusCode != http.StatusOK && res.StatusCode != http.StatusPartialContent) || res.ContentLength == 0 {
			return nil
		}
		limit := int64(-1) // unknown length: half the first read
		if res.ContentLength > 0 {
			limit = max(res.ContentLength/2, 1)
		}
		res.Body = &cutBody{rc: res.Body, limit: limit}
		p.mu.Lock()
		p.stats.Resets++
		p.mu.Unlock()
	}
	return nil
}

// mergePutRecords puts the entries failed by the proxy back into the
// backend's answer for the entries it forwarded.
func (p *Proxy) mergePutRecords(res *http.Response, pp *putPlan) error {
	if res.StatusCode != http.StatusOK {
		return nil // the whole call failed: nothing to merge
	}
	body, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if err != nil {
		return fmt.Errorf("read PutRecords response: %w", err)
	}
	// Entries were dropped: a response that cannot be merged must not reach
	// the client as a success, or the dropped entries would be lost.
	var out map[string]json.RawMessage
	if err := json.Unmarshal(body, &out); err != nil {
		return fmt.Errorf("decode PutRecords response: %w", err)
	}
	var recs []json.RawMessage
	if err := json.Unmarshal(out["Records"], &recs); err != nil {
		return fmt.Errorf("decode PutRecords response records: %w", err)
	}
	if kept := pp.total - len(pp.failed); len(recs) != kept {
		return fmt.Errorf("PutRecords response has %d records for the %d forwarded", len(recs), kept)
	}
	var failedCount int
	if raw, ok := out["FailedRecordCount"]; ok {
		if err := json.Unmarshal(raw, &failedCount); err != nil {
			return fmt.Errorf("decode PutRecords FailedRecordCount: %w", err)
		}
	}
	injected, err := json.Marshal(map[string]string{"ErrorCode": throughputExceeded, "ErrorMessage": "Rate exceeded for shard (injected)"})
	if err != nil {
		return fmt.Errorf("encode failed PutRecords entry: %w", err)
	}
	merged := make([]json.RawMessage, 0, pp.total)
	failed, next := pp.failed, 0
	for i := range pp.total {
		if len(failed) > 0 && failed[0] == i {
			failed = failed[1:]
			merged = append(merged, injected)
			failedCount++
			continue
		}
		merged = append(merged, recs[next])
		next++
	}
	if out["Records"], err = json.Marshal(merged); err != nil {
		return fmt.Errorf("encode PutRecords response records: %w", err)
	}
	if out["FailedRecordCount"], err = json.Marshal(failedCount); err != nil {
		return fmt.Errorf("encode PutRecords FailedRecordCount: %w", err)
	}
	b, err := json.Marshal(out)
	if err != nil {
		return fmt.Errorf("encode PutRecords response: %w", err)
	}
	res.Body = io.NopCloser(bytes.NewReader(b))
	res.ContentLength = int64(len(b))
	res.Header.Set("Content-Length", strconv.Itoa(len(b)))
	res.Header.Set("Content-Type", "application/x-amz-json-1.1")
	res.Header.Del("Content-Encoding")
	p.mu.Lock()
	p.stats.FailedEntries += len(pp.failed)
	p.mu.Unlock()
	return nil
}

// errInjectedReset ends a cut body; the reverse proxy then aborts the
// connection.
var errInjectedReset = errors.New("faultproxy: connection reset (injected)")

// cutBody passes the first limit bytes of a body, then fails. A negative
// limit is set to half of the first read (at least one byte).
type cutBody struct {
	rc    io.ReadCloser
	limit int64
	n     int64
}

func (c *cutBody) Read(b []byte) (int, error) {
	if c.limit >= 0 {
		if c.n >= c.limit {
			return 0, errInjectedReset
		}
		b = b[:min(int64(len(b)), c.limit-c.n)]
	}
	n, err := c.rc.Read(b)
	if c.limit < 0 && n > 0 {
		c.limit = max(int64(n)/2, 1)
		n = int(min(int64(n), c.limit))
	}
	c.n += int64(n)
	if c.limit >= 0 && c.n >= c.limit {
		return n, nil // the next read fails
	}
	return n, err
}

func (c *cutBody) Close() error { return c.rc.Close() }

// forwardError answers a request the backend could not answer, or whose
// client went away while it was forwarded (not counted).
func (p *Proxy) forwardError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		w.WriteHeader(http.StatusBadGateway) // nobody is left to read it
		return
	}
	p.mu.Lock()
	p.stats.ForwardErrors++
	p.mu.Unlock()
	http.Error(w, fmt.Sprintf("faultproxy: forward %s %s: %v", r.Method, r.URL.Path, err), http.StatusBadGateway)
}
