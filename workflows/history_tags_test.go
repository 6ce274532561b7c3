package workflows

// The JSON of FeedWorkflow's input and result, of every activity's inputs,
// result and heartbeat details, and of the types inside them, is in the
// history of every run. A run in flight decodes it with the code of the
// worker that picks it up: a Go field renamed without a json tag keeping its
// old name silently decodes as zero there. These tests pin that wire format.

import (
	"bytes"
	"context"
	"encoding"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/feedpipe/feedpipe/activities"
)

var updateWireFormat = flag.Bool("update-wire-format", false, "rewrite "+wireFormatGolden+" from the current types")

// wireFormatGolden holds, for each history type, the JSON key paths of a
// fully populated value ("[]" is an element of a list, "*" a map's key).
const wireFormatGolden = "testdata/wire-format.golden.json"

const wireFormatHelp = "a key in history is how runs in flight find the field: rename a Go field only with a json tag keeping its old name"

// historyTypes are the types whose JSON enters a run's history, by name:
// FeedWorkflow's input and result (also its failures' details), every
// activity's inputs and result (every exported method of
// *activities.Activities is registered as an activity), and the activities'
// heartbeat details (kept with a retried attempt and in timeout failures).
func historyTypes(t *testing.T) map[string]reflect.Type {
	t.Helper()
	ctxType := reflect.TypeFor[context.Context]()
	errType := reflect.TypeFor[error]()
	types := map[string]reflect.Type{}
	add := func(typ reflect.Type) {
		if typ == ctxType || typ == errType {
			return
		}
		for typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		types[typ.String()] = typ
	}
	addFunc := func(ft reflect.Type, from int) {
		for i := from; i < ft.NumIn(); i++ {
			add(ft.In(i))
		}
		for i := 0; i < ft.NumOut(); i++ {
			add(ft.Out(i))
		}
	}
	addFunc(reflect.TypeOf(FeedWorkflow), 1) // In(0) is the workflow.Context
	acts := reflect.TypeFor[*activities.Activities]()
	for i := 0; i < acts.NumMethod(); i++ {
		addFunc(acts.Method(i).Type, 1) // In(0) is the receiver
	}
	// Heartbeat details.
	add(reflect.TypeFor[activities.PutProgress]())
	add(reflect.TypeFor[activities.DeliveryState]())
	add(reflect.TypeFor[activities.ConvertProgress]())
	for _, want := range []string{"workflows.FeedInput", "workflows.FeedResult", "activities.PutInput", "activities.SupersedeInput", "activities.GlueRun"} {
		if types[want] == nil {
			t.Fatalf("history types %v lack %s", keys(types), want)
		}
	}
	return types
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// marshalsItself says whether typ's JSON is its own (time.Time,
// pipeline.Duration): its fields are not keys.
func marshalsItself(typ reflect.Type) bool {
	for _, i := range []reflect.Type{reflect.TypeFor[json.Marshaler](), reflect.TypeFor[encoding.TextMarshaler](),
		reflect.TypeFor[json.Unmarshaler](), reflect.TypeFor[encoding.TextUnmarshaler]()} {
		if typ.Implements(i) || reflect.PointerTo(typ).Implements(i) {
			return true
		}
	}
	return false
}

// untagged returns the exported fields, under typ, that have no json tag
// naming them: their key is the Go field name, which a rename changes.
func untagged(typ reflect.Type, path string, seen map[reflect.Type]bool) []string {
	if marshalsItself(typ) {
		return nil
	}
	switch typ.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return untagged(typ.Elem(), path+"[]", seen)
	case reflect.Map:
		return untagged(typ.Elem(), path+".*", seen)
	case reflect.Interface:
		return []string{path + " (an interface: its JSON is whatever is put in it)"}
	case reflect.Struct:
		if seen[typ] {
			return nil
		}
		seen[typ] = true
		var out []string
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			if !f.IsExported() {
				continue
			}
			where := fmt.Sprintf("%s.%s (%s.%s)", path, f.Name, typ, f.Name)
			tag, ok := f.Tag.Lookup("json")
			name, _, _ := strings.Cut(tag, ",")
			if !ok || name == "" {
				out = append(out, where)
				continue
			}
			if name == "-" {
				continue
			}
			out = append(out, untagged(f.Type, path+"."+name, seen)...)
		}
		return out
	}
	return nil
}

// TestHistoryTypesHaveJSONTags: every exported field of every type that
// enters history, at any depth, names its key with a json tag.
func TestHistoryTypesHaveJSONTags(t *testing.T) {
	types := historyTypes(t)
	seen := map[reflect.Type]bool{} // each type is reported once, under the first path to it
	for _, name := range keys(types) {
		for _, f := range untagged(types[name], name, seen) {
			t.Errorf("%s has no json tag naming its key; give it one (a new field: any name not used before; a renamed field: its old key)", f)
		}
	}
}

// fill sets every exported field under v to a non-zero value, lists and
// maps to one element; a type nested in itself (schema columns) is filled
// twice deep.
func fill(v reflect.Value, depth map[reflect.Type]int) {
	typ := v.Type()
	if typ == reflect.TypeFor[time.Time]() {
		v.Set(reflect.ValueOf(time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)))
		return
	}
	deepEnough := func(elem reflect.Type) bool { return depth[elem] >= 2 }
	switch typ.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(0.5)
	case reflect.Pointer:
		if deepEnough(typ.Elem()) {
			return
		}
		p := reflect.New(typ.Elem())
		fill(p.Elem(), depth)
		v.Set(p)
	case reflect.Slice:
		if deepEnough(typ.Elem()) {
			return
		}
		s := reflect.MakeSlice(typ, 1, 1)
		fill(s.Index(0), depth)
		v.Set(s)
	case reflect.Array:
		for i := 0; i < v.Len(); i++ {
			fill(v.Index(i), depth)
		}
	case reflect.Map:
		m := reflect.MakeMap(typ)
		k := reflect.New(typ.Key()).Elem()
		k.SetString("*")
		e := reflect.New(typ.Elem()).Elem()
		fill(e, depth)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Struct:
		depth[typ]++
		defer func() { depth[typ]-- }()
		for i := 0; i < typ.NumField(); i++ {
			if typ.Field(i).IsExported() {
				fill(v.Field(i), depth)
			}
		}
	}
}

// keyPaths lists the key paths of a JSON value.
func keyPaths(v any, prefix string, out map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			out[p+" "+jsonKind(e)] = true
			keyPaths(e, p, out)
		}
	case []any:
		for _, e := range x {
			keyPaths(e, prefix+"[]", out)
		}
	}
}

// jsonKind is the kind of a decoded JSON value, so that the golden file
// pins what each key holds too (a duration that became a string where runs
// in flight hold a number is a change of the wire format as well).
func jsonKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	}
	return "null"
}

// wireFormat is each history type's key paths with their JSON kinds, as in
// the golden file.
func wireFormat(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for name, typ := range historyTypes(t) {
		v := reflect.New(typ).Elem()
		fill(v, map[reflect.Type]int{})
		b, err := json.Marshal(v.Interface())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var decoded any
		if err := json.Unmarshal(b, &decoded); err != nil {
			t.Fatal(err)
		}
		paths := map[string]bool{}
		keyPaths(decoded, "", paths)
		out[name] = keys(paths)
	}
	return out
}

// TestHistoryWireFormat compares the JSON keys of a fully populated value of
// each history type with testdata/wire-format.golden.json. A key gone from
// it (a renamed field without its old tag, a removed field) breaks runs in
// flight; a new key is a new field: check its tag and update the file with
// go test ./workflows -run TestHistoryWireFormat -update-wire-format.
func TestHistoryWireFormat(t *testing.T) {
	got := wireFormat(t)
	if *updateWireFormat {
		b, err := json.MarshalIndent(got, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(wireFormatGolden, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", wireFormatGolden)
		return
	}
	b, err := os.ReadFile(wireFormatGolden)
	if err != nil {
		t.Fatalf("%v; write it with -update-wire-format", err)
	}
	var want map[string][]string
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatalf("%s: %v", wireFormatGolden, err)
	}
	update := "; if intended, update the file: go test ./workflows -run TestHistoryWireFormat -update-wire-format"
	for _, name := range keys(want) {
		g, ok := got[name]
		if !ok {
			t.Errorf("%s no longer enters history (renamed or no longer an activity's input or result?); recorded runs still carry it%s", name, update)
			continue
		}
		have := map[string]bool{}
		for _, k := range g {
			have[k] = true
		}
		for _, k := range want[name] {
			if !have[k] {
				t.Errorf("%s: key %q (path and JSON kind) is gone from the wire format: runs in flight have it in their history and would decode it as zero or fail to decode it; %s", name, k, wireFormatHelp)
			}
			delete(have, k)
		}
		for _, k := range keys(have) {
			t.Errorf("%s: new key %q (a new field? check that it has its json tag)%s", name, k, update)
		}
	}
	for _, name := range keys(got) {
		if _, ok := want[name]; !ok {
			t.Errorf("%s enters history but is not in %s%s", name, wireFormatGolden, update)
		}
	}
}

// payloadJSON returns a payload's JSON, or nil for a null one.
func payloadJSON(t *testing.T, p *commonpb.Payload) []byte {
	t.Helper()
	switch enc := string(p.GetMetadata()["encoding"]); enc {
	case "json/plain":
		return p.GetData()
	case "binary/null":
		return nil
	default:
		t.Fatalf("payload encoding %q, want json/plain", enc)
		return nil
	}
}

// decodeStrict decodes b into a new value of typ, failing on a key the type
// does not have (a key recorded under a name no field has any more).
func decodeStrict(b []byte, typ reflect.Type) (reflect.Value, error) {
	v := reflect.New(typ)
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	err := d.Decode(v.Interface())
	return v.Elem(), err
}

// knownGone are keys that recorded versions hold and no current field
// reads, by version, with what became of them. Each is a break, accepted
// when it was made; add none: keep the old key with a tag instead.
var knownGone = map[string]map[string]string{
	"before-replace": {
		// 679e608 (Parquet parts) replaced ConvertResult.ParquetKey, also in
		// ConfirmInput and FeedResult, with the list Files / ParquetKeys. A run
		// of that version in flight between Convert and ConfirmIngestion
		// loses its Parquet key (CheckIngestion gets no files).
		"parquet_key": "replaced by files / parquet_keys in 679e608",
	},
}

// withoutKeys returns b without the keys named in gone, at any depth.
func withoutKeys(b []byte, gone map[string]string) ([]byte, error) {
	if len(gone) == 0 {
		return b, nil
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	var strip func(any)
	strip = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if _, ok := gone[k]; ok {
					delete(x, k)
					continue
				}
				strip(e)
			}
		case []any:
			for _, e := range x {
				strip(e)
			}
		}
	}
	strip(v)
	return json.Marshal(v)
}

// TestRecordedPayloadsDecode decodes, with the current types, every payload
// the recorded histories of every version hold: the run's input and result
// and every activity's inputs and result. A key no field has any more fails
// (runs in flight would lose its value).
func TestRecordedPayloadsDecode(t *testing.T) {
	acts := reflect.TypeFor[*activities.Activities]()
	ctxType := reflect.TypeFor[context.Context]()
	check := func(t *testing.T, version, what string, p *commonpb.Payload, typ reflect.Type) {
		t.Helper()
		b := payloadJSON(t, p)
		if b == nil {
			return
		}
		known, err := withoutKeys(b, knownGone[version])
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if _, err := decodeStrict(known, typ); err != nil {
			t.Errorf("%s: decode into %s: %v; %s\n%s", what, typ, err, wireFormatHelp, b)
		}
	}
	versions := recordedHistories(t)
	for _, v := range keys(versions) {
		for _, f := range versions[v] {
			t.Run(v+"/"+f[strings.LastIndex(f, "/")+1:], func(t *testing.T) {
				scheduled := map[int64]reflect.Method{}
				n := 0
				for _, e := range readHistory(t, f).GetEvents() {
					switch e.GetEventType() {
					case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
						for _, p := range e.GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads() {
							check(t, v, "workflow input", p, reflect.TypeFor[FeedInput]())
							n++
						}
					case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
						for _, p := range e.GetWorkflowExecutionCompletedEventAttributes().GetResult().GetPayloads() {
							check(t, v, "workflow result", p, reflect.TypeFor[FeedResult]())
							n++
						}
					case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
						a := e.GetActivityTaskScheduledEventAttributes()
						name := a.GetActivityType().GetName()
						m, ok := acts.MethodByName(name)
						if !ok {
							t.Errorf("event %d schedules %s, which *activities.Activities no longer has", e.GetEventId(), name)
							continue
						}
						scheduled[e.GetEventId()] = m
						var params []reflect.Type
						for i := 1; i < m.Type.NumIn(); i++ {
							if m.Type.In(i) != ctxType {
								params = append(params, m.Type.In(i))
							}
						}
						ps := a.GetInput().GetPayloads()
						if len(ps) != len(params) {
							t.Errorf("event %d: %s input has %d payloads, the activity takes %d", e.GetEventId(), name, len(ps), len(params))
							continue
						}
						for i, p := range ps {
							check(t, v, fmt.Sprintf("event %d: %s input %d", e.GetEventId(), name, i), p, params[i])
							n++
						}
					case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
						a := e.GetActivityTaskCompletedEventAttributes()
						m := scheduled[a.GetScheduledEventId()]
						for _, p := range a.GetResult().GetPayloads() {
							if m.Type.NumOut() != 2 {
								t.Errorf("event %d: %s returned a result; it now returns none", e.GetEventId(), m.Name)
								continue
							}
							check(t, v, fmt.Sprintf("event %d: %s result", e.GetEventId(), m.Name), p, m.Type.Out(0))
							n++
						}
					}
				}
				if n == 0 {
					t.Error("no payloads in the history")
				}
			})
		}
	}
}

// putInputOf returns the input of the first PutToKinesis a history schedules.
func putInputOf(t *testing.T, path string) (activities.PutInput, []byte) {
	t.Helper()
	for _, e := range readHistory(t, path).GetEvents() {
		a := e.GetActivityTaskScheduledEventAttributes()
		if a.GetActivityType().GetName() != "PutToKinesis" {
			continue
		}
		b := payloadJSON(t, a.GetInput().GetPayloads()[0])
		var in activities.PutInput
		if err := json.Unmarshal(b, &in); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return in, b
	}
	t.Fatalf("%s schedules no PutToKinesis", path)
	return activities.PutInput{}, nil
}

// TestRecordedPutInputKeepsThePipeline decodes the PutToKinesis input of the
// recorded successes of every version into activities.PutInput: the
// pipeline's fields (untagged until they were given tags with their Go
// names) must arrive, not be zero.
func TestRecordedPutInputKeepsThePipeline(t *testing.T) {
	versions := recordedHistories(t)
	for _, v := range keys(versions) {
		t.Run(v, func(t *testing.T) {
			in, b := putInputOf(t, historiesDir+"/"+v+"/success.json")
			p := in.Pipeline
			for _, f := range []struct {
				name string
				zero bool
			}{
				{"feed_id", in.FeedID == ""},
				{"ref.bucket", in.Ref.Bucket == ""},
				{"ref.key", in.Ref.Key == ""},
				{"pipeline.Name", p.Name == ""},
				{"pipeline.StagingBucket", p.StagingBucket == ""},
				{"pipeline.StagingPrefix", p.StagingPrefix == ""},
				{"pipeline.DestBucket", p.DestBucket == ""},
				{"pipeline.DestPrefix", p.DestPrefix == ""},
				{"pipeline.QuarantineBucket", p.QuarantineBucket == ""},
				{"pipeline.Stream", p.Stream == ""},
				{"pipeline.Snowflake.Table", p.Snowflake.Table == ""},
				{"pipeline.Snowflake.Database", p.Snowflake.Database == ""},
				{"pipeline.Deadlines.Put", p.Deadlines.Put == 0},
				{"pipeline.Deadlines.Ingest", p.Deadlines.Ingest == 0},
				{"pipeline.HeartbeatTimeout", p.HeartbeatTimeout == 0},
				{"pipeline.Schema.columns", len(p.Schema.Columns) == 0},
			} {
				if f.zero {
					t.Errorf("%s decodes as zero from the recorded input; %s\n%s", f.name, wireFormatHelp, b)
				}
			}
			if p.Deadlines.Put.Std() < time.Minute {
				t.Errorf("pipeline.Deadlines.Put = %s: the duration's text form (\"30m0s\") did not decode", p.Deadlines.Put.Std())
			}
		})
	}
}
