package searchattr

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"google.golang.org/grpc"
)

// Operator is the part of Temporal's operator API that Ensure uses
// (client.Client.OperatorService() has it).
type Operator interface {
	ListSearchAttributes(ctx context.Context, in *operatorservice.ListSearchAttributesRequest, opts ...grpc.CallOption) (*operatorservice.ListSearchAttributesResponse, error)
	AddSearchAttributes(ctx context.Context, in *operatorservice.AddSearchAttributesRequest, opts ...grpc.CallOption) (*operatorservice.AddSearchAttributesResponse, error)
}

// Ensure makes sure every attribute of Definitions exists on the namespace
// with its type, adding the missing ones, and returns the names it added.
// Without the attributes the server rejects every run the starter starts.
//
// An attribute of the same name but another type is an error no call can
// fix. Where the server does not let this client add attributes (Temporal
// Cloud adds them through its control plane, not the namespace's endpoint),
// the error gives the tcld command that does.
func Ensure(ctx context.Context, op Operator, namespace string) ([]string, error) {
	have, err := op.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return nil, fmt.Errorf("list the search attributes of Temporal namespace %s: %w (on Temporal Cloud, add them with %s and start the worker with -ensure-search-attributes=false)",
			namespace, err, CloudCommand(namespace, nil))
	}
	missing := map[string]enumspb.IndexedValueType{}
	var wrong []string
	for name, typ := range Definitions() {
		got, ok := have.GetCustomAttributes()[name]
		if !ok {
			got, ok = have.GetSystemAttributes()[name]
		}
		switch {
		case !ok:
			missing[name] = typ
		case got != typ:
			wrong = append(wrong, fmt.Sprintf("%s is %s, feedpipe needs %s", name, typeName(got), typeName(typ)))
		}
	}
	if len(wrong) > 0 {
		sort.Strings(wrong)
		return nil, fmt.Errorf("Temporal namespace %s has search attributes of the wrong type: %s. An attribute's type cannot change: remove it (temporal operator search-attribute remove --name NAME) once no run uses it, or use another namespace",
			namespace, strings.Join(wrong, "; "))
	}
	if len(missing) == 0 {
		return nil, nil
	}
	names := make([]string, 0, len(missing))
	for n := range missing {
		names = append(names, n)
	}
	sort.Strings(names)
	_, err = op.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: namespace, SearchAttributes: missing})
	var already *serviceerror.AlreadyExists
	if err != nil && !errors.As(err, &already) {
		var denied *serviceerror.PermissionDenied
		var unimpl *serviceerror.Unimplemented
		if errors.As(err, &denied) || errors.As(err, &unimpl) {
			return nil, fmt.Errorf("Temporal namespace %s lacks the search attributes %s, and this client may not add them (%v). On Temporal Cloud run: %s",
				namespace, strings.Join(names, ", "), err, CloudCommand(namespace, names))
		}
		return nil, fmt.Errorf("add the search attributes %s to Temporal namespace %s: %w", strings.Join(names, ", "), namespace, err)
	}
	return names, nil
}

// CloudCommand is the tcld command that adds the named attributes (all of
// Definitions when names is empty) to a Temporal Cloud namespace.
func CloudCommand(namespace string, names []string) string {
	defs := Definitions()
	if len(names) == 0 {
		for n := range defs {
			names = append(names, n)
		}
		sort.Strings(names)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "tcld namespace search-attributes add --namespace %s", namespace)
	for _, n := range names {
		fmt.Fprintf(&b, " --search-attribute %s=%s", n, typeName(defs[n]))
	}
	return b.String()
}

// typeName is the name tcld and the temporal CLI use for an index type
// ("Keyword", "Int").
func typeName(t enumspb.IndexedValueType) string {
	s := strings.TrimPrefix(t.String(), "INDEXED_VALUE_TYPE_")
	switch s {
	case "KEYWORD_LIST":
		return "KeywordList"
	case "DATETIME":
		return "Datetime"
	}
	return strings.ToUpper(s[:1]) + strings.ToLower(s[1:])
}
