// Package pipeline holds feedpipe's pipelines configuration: which feeds (by
// source bucket and key prefix) go through which stream, delivery stream,
// conversion mode and Snowflake table, with their schema, reject threshold and
// deadlines. The file is TOML; Load validates it and every error names the key
// at fault and how to fix it.
package pipeline

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/feedpipe/feedpipe/internal/schema"
)

// Conversion modes.
const (
	ConvertLocal = "local" // the worker writes Parquet with parquet-go
	ConvertGlue  = "glue"  // a Glue job run does
	// ConvertFirehose: Firehose's record format conversion already wrote the
	// staged records as Parquet; the worker keeps this feed's rows, drops
	// duplicates and writes the feed's own file.
	ConvertFirehose = "firehose"
)

// Ingestion confirmation strategies.
const (
	ConfirmCopyHistory = "copy_history" // Snowflake's COPY_HISTORY table function (production)
	ConfirmLoadHistory = "load_history" // INFORMATION_SCHEMA.LOAD_HISTORY plus a row count (fakesnow)
)

// What a new upload of a key means for the rows of the key's earlier uploads.
const (
	// NewVersionReplace: once the new upload is loaded and confirmed, the
	// rows of the key's earlier uploads are removed (a feed that is a
	// snapshot: a corrected file replaces the one before).
	NewVersionReplace = "replace"
	// NewVersionAppend: every upload's rows stay (a feed of events).
	NewVersionAppend = "append"
)

// DefaultVersionsTable is the table, beside the pipeline's table, where each
// loaded upload of a replace pipeline is recorded.
const DefaultVersionsTable = "FEEDPIPE_VERSIONS"

// VersionsColumns are the columns of a versions table: one row per upload
// of a replace pipeline, recorded as its run's confirm stage begins.
// UPLOAD_ORDER sorts the uploads of one key (the source's LastModified, then
// the S3 event's sequencer); CONFIRMED is set once Snowflake's load of the
// upload is confirmed (NULL, from a table made before the column, counts as
// confirmed).
const VersionsColumns = "PIPELINE VARCHAR, BUCKET VARCHAR, OBJECT_KEY VARCHAR, FEED_ID VARCHAR, UPLOAD_ORDER VARCHAR, RECORDED_AT TIMESTAMP_NTZ, CONFIRMED BOOLEAN"

// Duration is a time.Duration written as "90s" or "15m" in the file and in
// workflow inputs.
type Duration time.Duration

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration like \"90s\" or \"15m\"", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Std is d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// Snowflake names the pipeline's target objects.
type Snowflake struct {
	Database string `toml:"database" json:"Database"`
	Schema   string `toml:"schema" json:"Schema"`
	Table    string `toml:"table" json:"Table"`
	Stage    string `toml:"stage" json:"Stage"`
	// Pipe is the Snowpipe that loads the stage (optional). While a feed's
	// files are not loaded yet, ConfirmIngestion reads its
	// SYSTEM$PIPE_STATUS and says when the pipe is paused or stalled.
	Pipe string `toml:"pipe,omitempty" json:"Pipe,omitempty"`
}

// Deadlines bound each stage of a feed, end to end including retries.
type Deadlines struct {
	Put      Duration `toml:"put" json:"Put"`           // streaming the file into Kinesis
	Delivery Duration `toml:"delivery" json:"Delivery"` // Firehose delivering every record
	Convert  Duration `toml:"convert" json:"Convert"`   // Parquet written
	Ingest   Duration `toml:"ingest" json:"Ingest"`     // Snowflake loaded the file
}

// Pipeline is one feed type.
//
// A Pipeline is part of every FeedWorkflow input and activity input, so its
// JSON is in the history of every run (as are Snowflake's and Deadlines').
// The json tags are that wire format: they keep the names the fields had
// before they were tagged (the Go field names), which the runs already
// recorded use. Renaming a field keeps its tag; a new field needs one
// (workflows/history_tags_test.go checks both).
type Pipeline struct {
	Name             string    `toml:"name" json:"Name"`
	SourceBucket     string    `toml:"source_bucket" json:"SourceBucket"`
	SourcePrefix     string    `toml:"source_prefix" json:"SourcePrefix"`
	Stream           string    `toml:"stream" json:"Stream"`
	DeliveryStream   string    `toml:"delivery_stream" json:"DeliveryStream"`
	StagingBucket    string    `toml:"staging_bucket" json:"StagingBucket"`
	StagingPrefix    string    `toml:"staging_prefix" json:"StagingPrefix"`
	DestBucket       string    `toml:"destination_bucket" json:"DestBucket"`
	DestPrefix       string    `toml:"destination_prefix" json:"DestPrefix"`
	QuarantineBucket string    `toml:"quarantine_bucket" json:"QuarantineBucket"`
	Conversion       string    `toml:"conversion" json:"Conversion"`
	GlueJob          string    `toml:"glue_job" json:"GlueJob"`
	Confirm          string    `toml:"confirm" json:"Confirm"`
	MaxRejectedLines int64     `toml:"max_rejected_lines" json:"MaxRejectedLines"`
	MaxRejectedRatio float64   `toml:"max_rejected_ratio" json:"MaxRejectedRatio"`
	Snowflake        Snowflake `toml:"snowflake" json:"Snowflake"`
	Deadlines        Deadlines `toml:"deadlines" json:"Deadlines"`
	HeartbeatTimeout Duration  `toml:"heartbeat_timeout" json:"HeartbeatTimeout"` // a stage silent this long is retried elsewhere; default 30s
	// OnNewVersion is NewVersionReplace (default) or NewVersionAppend. Runs
	// started before the setting existed have it empty, and append.
	OnNewVersion string `toml:"on_new_version" json:"OnNewVersion"`
	// VersionsTable records the loaded uploads of each key (replace), in
	// Snowflake.Database and Snowflake.Schema.
	VersionsTable string `toml:"versions_table" json:"VersionsTable"`
	// ParquetPlainIntegers writes the feed's integer, date and timestamp
	// pages PLAIN only, for a loader that does not decode
	// DELTA_BINARY_PACKED pages (see parquetconv.Options.PlainIntegers).
	ParquetPlainIntegers bool          `toml:"parquet_plain_integers" json:"ParquetPlainIntegers,omitempty"`
	Schema               schema.Schema `toml:"schema" json:"Schema"`
}

// Config is the whole file.
type Config struct {
	TaskQueue string     `toml:"task_queue"`
	Pipelines []Pipeline `toml:"pipeline"`
}

// Load reads, defaults and validates the file at path.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pipelines config: %w", err)
	}
	return Parse(path, b)
}

// Parse decodes, defaults and validates a config; name is used in errors.
func Parse(name string, b []byte) (*Config, error) {
	var c Config
	md, err := toml.Decode(string(b), &c)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			return nil, fmt.Errorf("pipelines config %s: line %d: %s", name, perr.Position.Line, perr.Message)
		}
		return nil, fmt.Errorf("pipelines config %s: %w", name, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		sort.Strings(keys)
		return nil, fmt.Errorf("pipelines config %s: unknown key %s; remove it or check its spelling (see pipelines.example.toml)", name, strings.Join(keys, ", "))
	}
	c.setDefaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("pipelines config %s: %w", name, err)
	}
	return &c, nil
}

func (c *Config) setDefaults() {
	if c.TaskQueue == "" {
		c.TaskQueue = "feedpipe"
	}
	for i := range c.Pipelines {
		p := &c.Pipelines[i]
		if p.Conversion == "" {
			p.Conversion = ConvertLocal
		}
		if p.Confirm == "" {
			p.Confirm = ConfirmCopyHistory
		}
		if p.Schema.Unknown == "" {
			p.Schema.Unknown = schema.UnknownDrop
		}
		if p.OnNewVersion == "" {
			p.OnNewVersion = NewVersionReplace
		}
		if p.VersionsTable == "" {
			p.VersionsTable = DefaultVersionsTable
		}
		d := &p.Deadlines
		for _, f := range []struct {
			v   *Duration
			def time.Duration
		}{{&d.Put, time.Hour}, {&d.Delivery, 30 * time.Minute}, {&d.Convert, time.Hour}, {&d.Ingest, 30 * time.Minute}} {
			if *f.v == 0 {
				*f.v = Duration(f.def)
			}
		}
	}
}

// Validate checks every pipeline, naming the key at fault.
func (c *Config) Validate() error {
	if len(c.Pipelines) == 0 {
		return errors.New("no [[pipeline]] declared")
	}
	names := map[string]bool{}
	for i := range c.Pipelines {
		p := &c.Pipelines[i]
		if err := p.validate(); err != nil {
			label := p.Name
			if label == "" {
				label = fmt.Sprintf("#%d", i+1)
			}
			return fmt.Errorf("pipeline %s: %w", label, err)
		}
		if names[p.Name] {
			return fmt.Errorf("pipeline %s: name used twice", p.Name)
		}
		names[p.Name] = true
	}
	for i := range c.Pipelines {
		for j := range c.Pipelines {
			a, b := &c.Pipelines[i], &c.Pipelines[j]
			if i != j && a.SourceBucket == b.SourceBucket && a.SourcePrefix == b.SourcePrefix {
				return fmt.Errorf("pipelines %s and %s both route s3://%s/%s; give them different source_prefix", a.Name, b.Name, a.SourceBucket, a.SourcePrefix)
			}
		}
	}
	return nil
}

func (p *Pipeline) validate() error {
	required := []struct{ key, val string }{
		{"name", p.Name}, {"source_bucket", p.SourceBucket}, {"stream", p.Stream},
		{"delivery_stream", p.DeliveryStream}, {"staging_bucket", p.StagingBucket},
		{"destination_bucket", p.DestBucket}, {"quarantine_bucket", p.QuarantineBucket},
		{"snowflake.database", p.Snowflake.Database}, {"snowflake.schema", p.Snowflake.Schema},
		{"snowflake.table", p.Snowflake.Table},
	}
	for _, r := range required {
		if strings.TrimSpace(r.val) == "" {
			return fmt.Errorf("%s is required", r.key)
		}
	}
	if p.StagingPrefix != "" && !strings.HasSuffix(p.StagingPrefix, "/") {
		return fmt.Errorf("staging_prefix = %q must end with \"/\" (Firehose writes each feed under PREFIXfeed=<id>/); use %q", p.StagingPrefix, p.StagingPrefix+"/")
	}
	switch p.Conversion {
	case ConvertLocal, ConvertFirehose:
	case ConvertGlue:
		if p.GlueJob == "" {
			return errors.New(`conversion = "glue" needs glue_job, the Glue job's name`)
		}
	default:
		return fmt.Errorf("conversion = %q; use %q, %q or %q", p.Conversion, ConvertLocal, ConvertGlue, ConvertFirehose)
	}
	switch p.Confirm {
	case ConfirmCopyHistory, ConfirmLoadHistory:
	default:
		return fmt.Errorf("confirm = %q; use %q (Snowflake) or %q (fakesnow)", p.Confirm, ConfirmCopyHistory, ConfirmLoadHistory)
	}
	switch p.OnNewVersion {
	case NewVersionReplace, NewVersionAppend:
	default:
		return fmt.Errorf("on_new_version = %q; use %q (a new upload of a key replaces the rows of its earlier uploads) or %q (every upload's rows stay)",
			p.OnNewVersion, NewVersionReplace, NewVersionAppend)
	}
	for _, id := range []struct{ key, val string }{
		{"snowflake.database", p.Snowflake.Database}, {"snowflake.schema", p.Snowflake.Schema},
		{"snowflake.table", p.Snowflake.Table}, {"snowflake.stage", p.Snowflake.Stage}, {"snowflake.pipe", p.Snowflake.Pipe},
	} {
		if id.val != "" && !identifier.MatchString(id.val) {
			return fmt.Errorf("%s = %q is not a plain Snowflake identifier (letters, digits, _ and $, not starting with a digit); feedpipe puts it into SQL unquoted, so name the object that way", id.key, id.val)
		}
	}
	if !identifier.MatchString(p.VersionsTable) {
		return fmt.Errorf("versions_table = %q is not a plain Snowflake identifier (letters, digits, _ and $, not starting with a digit)", p.VersionsTable)
	}
	if p.MaxRejectedLines < 0 {
		return errors.New("max_rejected_lines must be >= 0")
	}
	if p.MaxRejectedRatio < 0 || p.MaxRejectedRatio > 1 {
		return fmt.Errorf("max_rejected_ratio = %v; use a fraction between 0 and 1 (0.01 = 1%%)", p.MaxRejectedRatio)
	}
	if err := p.Schema.Validate(); err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	if p.Conversion == ConvertFirehose {
		for _, c := range p.Schema.Columns {
			if c.Type == schema.Object || c.Type == schema.List {
				return fmt.Errorf(`schema: column %q is of type %s, but conversion = "firehose" reads Firehose's Parquet by flat columns; declare it json, or use conversion = "local" or "glue"`, c.Name, c.Type)
			}
		}
	}
	return nil
}

// identifier is an unquoted Snowflake identifier.
var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]{0,254}$`)

// Route returns the pipeline whose source bucket and longest prefix match.
func (c *Config) Route(bucket, key string) (*Pipeline, error) {
	var best *Pipeline
	for i := range c.Pipelines {
		p := &c.Pipelines[i]
		if p.SourceBucket == bucket && strings.HasPrefix(key, p.SourcePrefix) &&
			(best == nil || len(p.SourcePrefix) > len(best.SourcePrefix)) {
			best = p
		}
	}
	if best == nil {
		return nil, fmt.Errorf("no pipeline routes s3://%s/%s; add a [[pipeline]] with source_bucket = %q and a source_prefix that the key starts with", bucket, key, bucket)
	}
	return best, nil
}

// Get returns the pipeline named name.
func (c *Config) Get(name string) (*Pipeline, error) {
	for i := range c.Pipelines {
		if c.Pipelines[i].Name == name {
			return &c.Pipelines[i], nil
		}
	}
	return nil, fmt.Errorf("no pipeline named %q in the config", name)
}
