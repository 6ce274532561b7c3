package searchattr

import (
	"context"
	"strings"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"google.golang.org/grpc"
)

type fakeOperator struct {
	have   map[string]enumspb.IndexedValueType
	addErr error
	added  map[string]enumspb.IndexedValueType
}

func (f *fakeOperator) ListSearchAttributes(_ context.Context, in *operatorservice.ListSearchAttributesRequest, _ ...grpc.CallOption) (*operatorservice.ListSearchAttributesResponse, error) {
	return &operatorservice.ListSearchAttributesResponse{CustomAttributes: f.have,
		SystemAttributes: map[string]enumspb.IndexedValueType{"WorkflowId": enumspb.INDEXED_VALUE_TYPE_KEYWORD}}, nil
}

func (f *fakeOperator) AddSearchAttributes(_ context.Context, in *operatorservice.AddSearchAttributesRequest, _ ...grpc.CallOption) (*operatorservice.AddSearchAttributesResponse, error) {
	if f.addErr != nil {
		return nil, f.addErr
	}
	f.added = in.SearchAttributes
	return &operatorservice.AddSearchAttributesResponse{}, nil
}

func TestEnsureAddsOnlyTheMissing(t *testing.T) {
	have := Definitions()
	delete(have, FeedStage.GetName())
	delete(have, FeedRecordsRead.GetName())
	op := &fakeOperator{have: have}
	added, err := Ensure(context.Background(), op, "prod")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(added, ",") != "FeedRecordsRead,FeedStage" || len(op.added) != 2 ||
		op.added["FeedStage"] != enumspb.INDEXED_VALUE_TYPE_KEYWORD || op.added["FeedRecordsRead"] != enumspb.INDEXED_VALUE_TYPE_INT {
		t.Fatalf("added %v (sent %v), want FeedRecordsRead (Int) and FeedStage (Keyword)", added, op.added)
	}

	op = &fakeOperator{have: Definitions()}
	if added, err := Ensure(context.Background(), op, "prod"); err != nil || len(added) != 0 || op.added != nil {
		t.Fatalf("all present: added %v, sent %v, err %v; want nothing", added, op.added, err)
	}
}

func TestEnsureRefusesAWrongType(t *testing.T) {
	have := Definitions()
	have[FeedRecordsRead.GetName()] = enumspb.INDEXED_VALUE_TYPE_KEYWORD
	_, err := Ensure(context.Background(), &fakeOperator{have: have}, "prod")
	if err == nil || !strings.Contains(err.Error(), "FeedRecordsRead is Keyword, feedpipe needs Int") || !strings.Contains(err.Error(), "prod") {
		t.Fatalf("err = %v", err)
	}
}

func TestEnsureGivesTheCloudCommandWhenItMayNotAdd(t *testing.T) {
	op := &fakeOperator{have: map[string]enumspb.IndexedValueType{}, addErr: serviceerror.NewPermissionDenied("Request unauthorized.", "")}
	_, err := Ensure(context.Background(), op, "feeds.a1b2c")
	want := "tcld namespace search-attributes add --namespace feeds.a1b2c --search-attribute FeedBucket=Keyword --search-attribute FeedKey=Keyword " +
		"--search-attribute FeedPipeline=Keyword --search-attribute FeedRecordsLoaded=Int --search-attribute FeedRecordsRead=Int " +
		"--search-attribute FeedRecordsRejected=Int --search-attribute FeedStage=Keyword"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v\nwant it to contain %s", err, want)
	}
	// Another worker adding them at the same moment is not an error.
	op = &fakeOperator{have: map[string]enumspb.IndexedValueType{}, addErr: serviceerror.NewAlreadyExists("exists")}
	if _, err := Ensure(context.Background(), op, "prod"); err != nil {
		t.Fatal(err)
	}
}
