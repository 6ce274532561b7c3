// Command feedpipe holds operator tools.
//
//	feedpipe convert [-schema FILE | -infer N] [-compression zstd|snappy|none]
//	                 [-unknown drop|reject|extra] [-rejects FILE] IN OUT
//	    NDJSON (plain or gzip; "-" for stdin) → Parquet, in bounded memory.
//	    Prints rows, rejects, input MB, MB/s and peak memory.
//	feedpipe gen [-records N | -size BYTES] [-wide | -ids] [-bad-every N] [-seed S] OUT
//	    Writes a deterministic customers feed (for tests and benchmarks).
//	feedpipe reset -workflow-id ID [-stage STAGE] [-reason TEXT]
//	    Runs a failed feed's run again from the stage it failed in (or an
//	    earlier one), keeping the work of the stages before. Temporal is
//	    addressed as by the worker (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, …).
//	feedpipe doctor [-config FILE] [-queue URL]
//	    Checks every resource the config names (buckets, queue, stream,
//	    delivery stream, Glue job, Snowflake objects, Temporal namespace and
//	    workers) and prints ✓ or ✗ with the fix; exits 1 on any ✗.
//	feedpipe setup temporal [-print-cloud-command]
//	    Adds feedpipe's search attributes to the namespace where missing (the
//	    worker does it at start too), or prints the tcld command for Temporal
//	    Cloud.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/BurntSushi/toml"

	"github.com/feedpipe/feedpipe/internal/convert"
	"github.com/feedpipe/feedpipe/internal/feedgen"
	"github.com/feedpipe/feedpipe/internal/parquetconv"
	"github.com/feedpipe/feedpipe/internal/schema"
	"github.com/feedpipe/feedpipe/internal/termprogress"
)

const usage = `usage:
  feedpipe convert [-schema FILE | -infer N] [-compression zstd|snappy|none] [-unknown drop|reject|extra] [-rejects FILE] IN OUT
  feedpipe gen [-records N | -size BYTES] [-wide | -ids] [-bad-every N] [-seed S] OUT
  feedpipe reset -workflow-id ID [-stage STAGE] [-reason TEXT]
  feedpipe doctor [-config FILE] [-queue URL]
  feedpipe cancel -workflow-id ID [-wait 2m]
  feedpipe setup temporal [-print-cloud-command]
  feedpipe setup current-version -build-id ID [-deployment-name feedpipe]
  feedpipe codec-server [-addr 127.0.0.1:8081] [-origin http://127.0.0.1:8233]
  feedpipe runs [-pipeline P] [-stage S] [-failed | -running] [-since 1h|2026-12-01] [-limit N] [-json]
  feedpipe status (-workflow-id ID | -bucket B -key K) [-sample 2s] [-json] [-watch [-every 3s]]`

func main() {
	err := run(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return // -h: the flag package printed the usage; asking for help is not an error
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "feedpipe:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Println(usage)
		return nil
	case "convert":
		return runConvert(args[1:])
	case "gen":
		return runGen(args[1:])
	case "reset":
		return runReset(args[1:])
	case "cancel":
		return runCancel(args[1:])
	case "doctor":
		return runDoctor(args[1:])
	case "setup":
		return runSetup(args[1:])
	case "runs":
		return runRuns(args[1:])
	case "status":
		return runStatus(args[1:])
	case "codec-server":
		return runCodecServer(args[1:])
	}
	return fmt.Errorf("unknown command %q\n%s", args[0], usage)
}

func runConvert(args []string) error {
	fs := flag.NewFlagSet("convert", flag.ContinueOnError)
	schemaPath := fs.String("schema", "", "schema file (TOML: columns = [{name, type, nullable, formats, precision, scale, dictionary, fields, items}], unknown_fields)")
	infer := fs.Int("infer", 10000, "infer the schema from the first N lines, or the first 64 MiB if that ends first (without -schema)")
	compression := fs.String("compression", "zstd", "zstd, snappy or none")
	zstdLevel := fs.Int("zstd-level", parquetconv.DefaultZstdLevel, fmt.Sprintf("zstd's level, 1 to %d (the Go encoder has four speeds: 1-2, 3-5, 6-9 and 10-%d write the same file); 3 made the bench file about 1%% smaller than 1, in about 22%% more time", parquetconv.MaxZstdLevel, parquetconv.MaxZstdLevel))
	unknown := fs.String("unknown", "", "undeclared fields: drop, reject or extra (a JSON _extra column); default: the schema file's, else drop. Keys that can be no column (empty, or a column's name in another case) are never dropped: at the top level kept in _extra with extra, else the line is rejected; inside an object such a key rejects the line, even with extra")
	rejectsPath := fs.String("rejects", "", "write rejected lines here as NDJSON {line, reason, raw} (raw_base64 instead of raw when the line is not UTF-8; the first MiB with truncated and line_bytes when longer) (default: OUT.rejects.ndjson when any)")
	rowGroupMB := fs.Int("row-group-mb", 64, "row group size bound in MiB")
	rowGroupRows := fs.Int64("row-group-rows", 0, "row group size bound in rows (default 1Mi)")
	plainIntegers := fs.Bool("plain-integers", false, "write integer, date and timestamp pages PLAIN only, for a reader that does not decode DELTA_BINARY_PACKED (by default a page is delta-encoded when that is no larger than PLAIN and at most a quarter larger than PLAIN compressed)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the conversion to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 2 || fs.NArg() == 2 && strings.HasPrefix(fs.Arg(1), "-") && fs.Arg(1) != "-" {
		for _, a := range fs.Args()[1:] {
			if strings.HasPrefix(a, "-") && a != "-" {
				return fmt.Errorf("convert: %s after IN OUT: flags go before IN OUT (feedpipe convert [flags] IN OUT)", a)
			}
		}
	}
	if fs.NArg() != 2 {
		return fmt.Errorf("convert: want IN and OUT, got %d arguments: feedpipe convert [flags] IN OUT (IN may be - for stdin; feedpipe convert -h lists the flags)", fs.NArg())
	}
	inPath, outPath := fs.Arg(0), fs.Arg(1)
	if *rowGroupMB <= 0 || *rowGroupMB > 1<<20 {
		return fmt.Errorf("convert: -row-group-mb %d: give the row group size bound in MiB, from 1 to %d (default 64)", *rowGroupMB, 1<<20)
	}
	if *rowGroupRows < 0 {
		return fmt.Errorf("convert: -row-group-rows %d: give the row group size bound in rows, at least 1, or leave it out for 1Mi", *rowGroupRows)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *schemaPath != "" && set["infer"] {
		return errors.New("convert: -infer and -schema both given: -infer N infers the columns from the first N lines, -schema gives them; use one")
	}
	level := 0 // the writer's default
	if set["zstd-level"] {
		if *compression != "zstd" {
			return fmt.Errorf("convert: -zstd-level with -compression %s: a level is for zstd only; leave one of them out", *compression)
		}
		if *zstdLevel < 1 || *zstdLevel > parquetconv.MaxZstdLevel {
			return fmt.Errorf("convert: -zstd-level %d: give 1 to %d (default %d)", *zstdLevel, parquetconv.MaxZstdLevel, parquetconv.DefaultZstdLevel)
		}
		level = *zstdLevel
	}
	if *infer <= 0 {
		return fmt.Errorf("convert: -infer %d: give the number of lines to infer the columns from, at least 1 (default 10000), or -schema FILE", *infer)
	}
	if err := notSameFile(inPath, outPath); err != nil {
		return err
	}
	if outPath == "-" {
		return errors.New("convert: OUT is -: Parquet is written to a file (its footer comes last, and the file is renamed into place when complete), not to standard output; give a file path")
	}
	outFile, err := outputFile("OUT", outPath)
	if err != nil {
		return err
	}
	opt := convert.Options{InferLines: *infer, Compression: *compression, ZstdLevel: level, Unknown: *unknown, RowGroupBytes: int64(*rowGroupMB) << 20, RowGroupRows: *rowGroupRows, PlainIntegers: *plainIntegers}
	if *schemaPath != "" {
		s, err := loadSchema(*schemaPath)
		if err != nil {
			return err
		}
		opt.Schema = s
		if opt.Unknown == "" {
			opt.Unknown = s.Unknown
		}
	}
	in := io.Reader(os.Stdin)
	var inSize int64 // 0: not known (stdin)
	if inPath != "-" {
		f, err := os.Open(inPath)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			inSize = fi.Size()
		}
	}
	counted := &countingReader{r: in}
	in = counted
	// OUT and the rejects file are written under temporary names in their
	// directories and renamed once complete: a failed or killed run leaves
	// the earlier OUT and its rejects as they were, and a run that completes
	// leaves its own pair (no rejects file when it rejected nothing).
	out, err := createTemp(outFile)
	if err != nil {
		return err
	}
	defer out.discard()
	bw := bufio.NewWriterSize(out, 1<<20)

	var rejects *bufio.Writer
	var rejectsFile *atomicFile
	if *rejectsPath == "" {
		*rejectsPath = outPath + ".rejects.ndjson"
	}
	if err := notSameFile(inPath, *rejectsPath); err != nil {
		return err
	}
	// The rejects file is created (under its temporary name) now, so that
	// an unusable -rejects path fails before any input is read, not at the
	// first reject; it is kept only if a line is rejected.
	rejectsTarget, err := outputFile("-rejects", *rejectsPath)
	if err != nil {
		return err
	}
	if rejectsTarget == outFile || sameTarget(outPath, *rejectsPath) {
		// The rejects file would replace OUT, or (no rejects) OUT would be
		// removed as an earlier run's rejects file.
		return fmt.Errorf("convert: -rejects %s is the output file %s; give another rejects path", *rejectsPath, outPath)
	}
	rejectsFile, err = createTemp(rejectsTarget)
	if err != nil {
		return fmt.Errorf("convert: -rejects: %w", err)
	}
	defer rejectsFile.discard()
	rejectsBuf := bufio.NewWriter(rejectsFile.f)
	var rejectErr error
	opt.OnReject = func(r convert.Reject) {
		rejects = rejectsBuf
		b, _ := json.Marshal(rejectRecord(r))
		if _, err := rejects.Write(append(b, '\n')); err != nil && rejectErr == nil {
			rejectErr = err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *cpuProfile != "" {
		pf, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); pf.Close() }()
	}
	t0 := time.Now()
	// A progress line on stderr when it is a terminal; nothing in a pipe.
	stopProgress := showProgress(termprogress.ForStderr(nil, 0), "convert", counted, inSize)
	st, err := convert.Convert(ctx, in, bw, opt)
	stopProgress()
	if err == nil {
		err = bw.Flush()
	}
	if err == nil && rejectErr != nil {
		err = fmt.Errorf("write rejects %s: %w", *rejectsPath, rejectErr)
	}
	if err == nil && rejects != nil {
		if err = rejects.Flush(); err == nil {
			err = rejectsFile.commit()
		}
	}
	if err == nil {
		err = out.commit()
	}
	if err == nil && rejects == nil {
		// No rejects this time: an earlier run's file beside OUT would
		// describe another output.
		if rerr := os.Remove(rejectsTarget); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = fmt.Errorf("remove the earlier run's %s: %w", *rejectsPath, rerr)
		}
	}
	if err != nil {
		return fmt.Errorf("convert %s: %w", inPath, err)
	}
	secs := time.Since(t0).Seconds()
	mb := float64(st.InputBytes) / 1e6
	fmt.Printf("rows %d  rejects %d  input %.1f MB  %.1f MB/s  %.2f s  peak memory %.0f MiB  columns %d\n",
		st.Rows, st.Rejected, mb, mb/secs, secs, float64(peakRSS())/(1<<20), len(st.Schema.Columns))
	if st.Rejected > 0 {
		fmt.Printf("rejected lines: %s\n", *rejectsPath)
	}
	return nil
}

// rejectLine is one line of a rejects file: {line, reason, raw} as it
// always was, with the field names of the pipeline's quarantine objects
// (activities.quarantined) where raw cannot be the line as a JSON string:
// a line that is not UTF-8 (anywhere, even beyond the bytes kept) has
// raw_base64 (its bytes) instead of raw, and one cut to its first MiB has
// truncated, with line_bytes, its length (the pipeline has no line_bytes,
// and cuts at 1 MiB - 128 bytes, the longest line it sends).
type rejectLine struct {
	Line      int64   `json:"line"`
	Reason    string  `json:"reason"`
	Raw       *string `json:"raw,omitempty"`
	RawBase64 []byte  `json:"raw_base64,omitempty"`
	Truncated bool    `json:"truncated,omitempty"`
	LineBytes int64   `json:"line_bytes,omitempty"`
}

func rejectRecord(r convert.Reject) rejectLine {
	rl := rejectLine{Line: r.Line, Reason: r.Reason}
	if utf8.Valid(r.Raw) && !r.NotUTF8 {
		raw := string(r.Raw)
		rl.Raw = &raw
	} else {
		rl.RawBase64 = r.Raw
	}
	if r.Bytes > int64(len(r.Raw)) {
		rl.Truncated, rl.LineBytes = true, r.Bytes
	}
	return rl
}

func loadSchema(path string) (*schema.Schema, error) {
	var s schema.Schema
	md, err := toml.DecodeFile(path, &s)
	if err != nil {
		return nil, fmt.Errorf("schema %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		var keys []string
		for _, k := range und {
			keys = append(keys, k.String())
		}
		sort.Strings(keys)
		return nil, fmt.Errorf("schema %s: unknown key %s", path, strings.Join(keys, ", "))
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("schema %s: %w", path, err)
	}
	return &s, nil
}

// peakRSS is this process's peak resident set size (VmHWM).
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func runGen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	records := fs.Int("records", 100000, "lines to write")
	size := fs.Int64("size", 0, "write lines until the feed reaches this many bytes (overrides -records)")
	wide := fs.Bool("wide", false, "26 fields a line with nested objects, arrays, timestamps and long strings")
	ids := fs.Bool("ids", false, "10 fields a line of values that hardly repeat (UUIDs, ids, URLs, IPs, tokens), instead of customers")
	badEvery := fs.Int("bad-every", 0, "every Nth line is malformed")
	seed := fs.Uint64("seed", 1, "random seed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New(usage)
	}
	if *wide && *ids {
		return errors.New("gen: -wide and -ids both given: they are two kinds of feed; use one")
	}
	f, err := os.Create(fs.Arg(0))
	if err != nil {
		return err
	}
	st, err := feedgen.Write(f, feedgen.Options{Records: *records, Bytes: *size, Wide: *wide, IDs: *ids, BadEvery: *badEvery, Seed: *seed})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	fmt.Printf("wrote %s: %d lines (%d bad), %.1f MB\n", fs.Arg(0), st.Lines, st.Bad, float64(st.Bytes)/1e6)
	return nil
}
