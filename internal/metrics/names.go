package metrics

// feedpipe's own metrics, as recorded through the Temporal metrics handler.
// Prometheus shows counters with a _total suffix and the stage duration in
// seconds (feedpipe_stage_duration_seconds). Every one is labelled by
// pipeline; the SDK adds namespace, task_queue and workflow_type.
const (
	// Records counted by a run as each stage ends (label pipeline).
	RecordsRead      = "feedpipe_records_read"
	RecordsRejected  = "feedpipe_records_rejected"
	RecordsPut       = "feedpipe_records_put"
	RecordsDelivered = "feedpipe_records_delivered"
	RecordsConverted = "feedpipe_records_converted"
	RecordsLoaded    = "feedpipe_records_loaded"
	// Duplicates are records Firehose delivered more than once (dropped);
	// Resends are PutRecords entries sent again.
	Duplicates = "feedpipe_duplicates"
	Resends    = "feedpipe_resends"
	// StageDuration is a stage's time in a run, retries and waits included
	// (labels pipeline, stage, outcome = ok|failed|canceled).
	StageDuration = "feedpipe_stage_duration"
	// FeedsFinished counts runs that ended (labels pipeline, outcome =
	// done|failed|canceled, error_type: the failure's type, "" when done).
	FeedsFinished = "feedpipe_feeds_finished"
	// FeedsInFlight is the number of running runs in each stage, from
	// Temporal's visibility (labels pipeline, stage).
	FeedsInFlight = "feedpipe_feeds_in_flight"
	// StarterMessages counts queue messages by what the starter made of
	// them (label outcome = handled|ignored|malformed|retried).
	StarterMessages = "feedpipe_starter_messages"
	// Starts counts start requests (labels pipeline, outcome =
	// started|existed|failed).
	Starts = "feedpipe_starts"
)
