package parquetconv

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/feedpipe/feedpipe/internal/schema"
)

// ReadRecords reads a flat Parquet file of feed records (columns _feed_id,
// _line and the schema's columns, matched by name case-insensitively, as
// Firehose's record format conversion writes them) and calls fn with each
// row's feed id, line number and values in s.Columns order.
func ReadRecords(data []byte, s schema.Schema, fn func(feedID string, line int64, vals []schema.Value) error) error {
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return fmt.Errorf("parquet: open: %w", err)
	}
	cols := f.Schema().Columns()
	index := map[string]int{}
	for i, path := range cols {
		if len(path) != 1 {
			continue // nested columns are not feed columns
		}
		index[strings.ToLower(path[0])] = i
	}
	feedCol, ok1 := index[schema.FeedIDField]
	lineCol, ok2 := index[schema.LineField]
	if !ok1 || !ok2 {
		return errors.New("parquet: no _feed_id and _line columns; not a feedpipe staging file")
	}
	want := make([]int, len(s.Columns))
	for i, c := range s.Columns {
		j, ok := index[strings.ToLower(c.Name)]
		if !ok {
			j = -1
		}
		want[i] = j
	}
	buf := make([]parquet.Row, 256)
	for _, rg := range f.RowGroups() {
		rows := rg.Rows()
		for {
			n, err := rows.ReadRows(buf)
			for _, row := range buf[:n] {
				byCol := make([]parquet.Value, len(cols))
				for _, v := range row {
					byCol[v.Column()] = v
				}
				vals := make([]schema.Value, len(s.Columns))
				for i, c := range s.Columns {
					if want[i] < 0 || byCol[want[i]].IsNull() {
						if !c.Nullable {
							return fmt.Errorf("parquet: line %d: column %q is required", byCol[lineCol].Int64(), c.Name)
						}
						vals[i] = schema.Value{Null: true}
						continue
					}
					v, err := fromParquet(c, byCol[want[i]])
					if err != nil {
						return fmt.Errorf("parquet: line %d: column %q: %w", byCol[lineCol].Int64(), c.Name, err)
					}
					vals[i] = v
				}
				if err := fn(string(byCol[feedCol].ByteArray()), byCol[lineCol].Int64(), vals); err != nil {
					rows.Close()
					return err
				}
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rows.Close()
				return fmt.Errorf("parquet: read rows: %w", err)
			}
		}
		rows.Close()
	}
	return nil
}

func fromParquet(c schema.Column, v parquet.Value) (schema.Value, error) {
	switch c.Type {
	case schema.String, schema.JSON:
		return schema.Value{S: string(v.ByteArray())}, nil
	case schema.Int64:
		switch v.Kind() {
		case parquet.Int32:
			return schema.Value{I: int64(v.Int32())}, nil
		case parquet.Int64:
			return schema.Value{I: v.Int64()}, nil
		case parquet.Double:
			d := v.Double()
			if d != math.Trunc(d) {
				return schema.Value{}, fmt.Errorf("%v is not an integer", d)
			}
			return schema.Value{I: int64(d)}, nil
		}
	case schema.Float64:
		switch v.Kind() {
		case parquet.Double:
			return schema.Value{F: v.Double()}, nil
		case parquet.Float:
			return schema.Value{F: float64(v.Float())}, nil
		case parquet.Int64:
			return schema.Value{F: float64(v.Int64())}, nil
		case parquet.Int32:
			return schema.Value{F: float64(v.Int32())}, nil
		}
	case schema.Bool:
		if v.Kind() == parquet.Boolean {
			return schema.Value{B: v.Boolean()}, nil
		}
	case schema.Timestamp:
		if v.Kind() == parquet.Int64 {
			return schema.Value{I: v.Int64()}, nil // microseconds, as Firehose writes them
		}
		if v.Kind() == parquet.ByteArray {
			t, err := time.Parse(time.RFC3339Nano, string(v.ByteArray()))
			if err != nil {
				return schema.Value{}, err
			}
			return schema.Value{I: t.UTC().UnixMicro()}, nil
		}
	case schema.Decimal:
		switch v.Kind() { // unscaled, as written with the same scale
		case parquet.Int64:
			return schema.Value{I: v.Int64()}, nil
		case parquet.Int32:
			return schema.Value{I: int64(v.Int32())}, nil
		}
	case schema.Date:
		if v.Kind() == parquet.Int32 {
			return schema.Value{I: int64(v.Int32())}, nil
		}
	}
	return schema.Value{}, fmt.Errorf("a %s value cannot be read as %s", v.Kind(), c.Type)
}
