// Package searchattr holds the custom Temporal search attributes that
// FeedWorkflow upserts, so that the worker, the starter and the local
// Temporal server agree on their names and types.
package searchattr

import (
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
)

// Typed keys for the attributes FeedWorkflow sets. Operators filter runs in
// the Temporal UI with them, e.g. `FeedPipeline = "customers" AND FeedStage = "Convert"`.
var (
	FeedBucket      = temporal.NewSearchAttributeKeyKeyword("FeedBucket")
	FeedKey         = temporal.NewSearchAttributeKeyKeyword("FeedKey")
	FeedPipeline    = temporal.NewSearchAttributeKeyKeyword("FeedPipeline")
	FeedStage       = temporal.NewSearchAttributeKeyKeyword("FeedStage")
	FeedRecordsRead = temporal.NewSearchAttributeKeyInt64("FeedRecordsRead")
	FeedRecordsBad  = temporal.NewSearchAttributeKeyInt64("FeedRecordsRejected")
	FeedRecordsLoad = temporal.NewSearchAttributeKeyInt64("FeedRecordsLoaded")
)

// Definitions returns every custom attribute with its index type, in the
// form the Temporal operator API and the embedded dev server take.
func Definitions() map[string]enumspb.IndexedValueType {
	return map[string]enumspb.IndexedValueType{
		FeedBucket.GetName():      enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		FeedKey.GetName():         enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		FeedPipeline.GetName():    enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		FeedStage.GetName():       enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		FeedRecordsRead.GetName(): enumspb.INDEXED_VALUE_TYPE_INT,
		FeedRecordsBad.GetName():  enumspb.INDEXED_VALUE_TYPE_INT,
		FeedRecordsLoad.GetName(): enumspb.INDEXED_VALUE_TYPE_INT,
	}
}
