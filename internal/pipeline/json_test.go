package pipeline

import (
	"encoding/json"
	"testing"
	"time"
)

// recorded is a Pipeline as a run recorded it in its history (the
// PutToKinesis input of workflows/testdata/histories/
// record-upload-before-confirm/success.json), from before Pipeline had json
// tags: its keys are the Go field names.
const recorded = `{"Name":"customers","SourceBucket":"feedpipe-source","SourcePrefix":"customers/","Stream":"feedpipe-records","DeliveryStream":"feedpipe-staging","StagingBucket":"feedpipe-staging","StagingPrefix":"raw/","DestBucket":"feedpipe-dest","DestPrefix":"customers/","QuarantineBucket":"feedpipe-quarantine","Conversion":"local","GlueJob":"","Confirm":"load_history","MaxRejectedLines":0,"MaxRejectedRatio":0.01,"Snowflake":{"Database":"FEEDPIPE","Schema":"RAW","Table":"CUSTOMERS","Stage":"FEEDPIPE_DEST"},"Deadlines":{"Put":"30m0s","Delivery":"20m0s","Convert":"30m0s","Ingest":"10m0s"},"HeartbeatTimeout":"10s","OnNewVersion":"replace","VersionsTable":"FEEDPIPE_VERSIONS","Schema":{"columns":[{"name":"id","type":"int64","nullable":false},{"name":"name","type":"string","nullable":false},{"name":"email","type":"string","nullable":true},{"name":"country","type":"string","nullable":true},{"name":"balance","type":"float64","nullable":true},{"name":"active","type":"bool","nullable":true},{"name":"signed_up","type":"string","nullable":true}],"unknown_fields":"drop"}}`

// The json tags keep the recorded wire format: a recorded Pipeline decodes
// to its values (durations through their text form) and encodes back to the
// same bytes (Pipe, empty, stays omitted as before).
func TestPipelineJSONIsTheRecordedWireFormat(t *testing.T) {
	var p Pipeline
	if err := json.Unmarshal([]byte(recorded), &p); err != nil {
		t.Fatal(err)
	}
	if p.StagingBucket != "feedpipe-staging" || p.DestPrefix != "customers/" || p.Snowflake.Table != "CUSTOMERS" ||
		p.Deadlines.Put.Std() != 30*time.Minute || p.Deadlines.Ingest.Std() != 10*time.Minute || p.HeartbeatTimeout.Std() != 10*time.Second ||
		p.MaxRejectedRatio != 0.01 || len(p.Schema.Columns) != 7 || p.Schema.Unknown != "drop" {
		t.Errorf("decoded %+v", p)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != recorded {
		t.Errorf("encodes as\n%s\nwant the recorded\n%s", b, recorded)
	}
	p.Snowflake.Pipe = "P"
	b, _ = json.Marshal(p.Snowflake)
	if want := `{"Database":"FEEDPIPE","Schema":"RAW","Table":"CUSTOMERS","Stage":"FEEDPIPE_DEST","Pipe":"P"}`; string(b) != want {
		t.Errorf("snowflake with a pipe: %s, want %s", b, want)
	}
}
