// Package export_airlock_tool_tool is the `json-transform` tool: it filters,
// projects, sorts and limits a list of JSON records (world `pure`), with the
// same query language as the Rust guest.
package export_airlock_tool_tool

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
	. "wit_component/airlock_tool_tool"
)

const schema = `{"type":"object","required":["records"],"properties":{"records":{"type":"array","items":{"type":"object"}},"where":{"type":"object","required":["field","op"]},"select":{"type":"array","items":{"type":"string"}},"sort_by":{"type":"string"},"descending":{"type":"boolean"},"limit":{"type":"integer","minimum":0}}}`

type invalid string

func rank(v any, present bool) int {
	if !present {
		return 0
	}
	switch v.(type) {
	case nil:
		return 1
	case bool:
		return 2
	case json.Number:
		return 3
	case string:
		return 4
	}
	return 5
}

func number(v any) float64 {
	f, _ := v.(json.Number).Float64()
	return f
}

func compare(a any, aok bool, b any, bok bool) int {
	ra, rb := rank(a, aok), rank(b, bok)
	if ra != rb {
		return ra - rb
	}
	switch ra {
	case 2:
		x, y := a.(bool), b.(bool)
		if x == y {
			return 0
		} else if !x {
			return -1
		}
		return 1
	case 3:
		x, y := number(a), number(b)
		if x < y {
			return -1
		} else if x > y {
			return 1
		}
		return 0
	case 4:
		return strings.Compare(a.(string), b.(string))
	}
	return 0
}

func same(a, b any) bool {
	if x, ok := a.(json.Number); ok {
		y, ok := b.(json.Number)
		return ok && number(x) == number(y)
	}
	return reflect.DeepEqual(a, b)
}

type filter func(map[string]any) bool

func parseFilter(spec any) (filter, error) {
	object, ok := spec.(map[string]any)
	if !ok {
		return nil, invalid("`where` must be an object")
	}
	field, ok := object["field"].(string)
	if !ok {
		return nil, invalid("`where.field` must be a string")
	}
	op, ok := object["op"].(string)
	if !ok {
		return nil, invalid("`where.op` must be a string")
	}
	value, hasValue := object["value"]
	switch op {
	case "exists":
	case "eq", "ne", "gt", "ge", "lt", "le", "contains":
		if !hasValue {
			return nil, invalid(fmt.Sprintf("`where.op` \"%s\" needs a `where.value`", op))
		}
	default:
		return nil, invalid(fmt.Sprintf("unknown `where.op` \"%s\": use eq, ne, gt, ge, lt, le, contains or exists", op))
	}
	return func(record map[string]any) bool {
		actual, present := record[field]
		order := func() int { return compare(actual, present, value, true) }
		switch op {
		case "exists":
			return present
		case "eq":
			return present && same(actual, value)
		case "ne":
			return !(present && same(actual, value))
		case "gt":
			return present && order() > 0
		case "ge":
			return present && order() >= 0
		case "lt":
			return present && order() < 0
		case "le":
			return present && order() <= 0
		}
		if s, ok := actual.(string); ok {
			needle, ok := value.(string)
			return ok && strings.Contains(s, needle)
		}
		if items, ok := actual.([]any); ok {
			for _, item := range items {
				if same(item, value) {
					return true
				}
			}
		}
		return false
	}, nil
}

func (e invalid) Error() string { return string(e) }

func transform(query map[string]any) (map[string]any, error) {
	records, ok := query["records"].([]any)
	if !ok {
		return nil, invalid("`records` must be an array of objects")
	}
	keep := filter(func(map[string]any) bool { return true })
	if spec, ok := query["where"]; ok {
		var err error
		if keep, err = parseFilter(spec); err != nil {
			return nil, err
		}
	}
	matched := []map[string]any{}
	for index, record := range records {
		object, ok := record.(map[string]any)
		if !ok {
			return nil, invalid(fmt.Sprintf("records[%d] is not an object", index))
		}
		if keep(object) {
			matched = append(matched, object)
		}
	}
	if by, ok := query["sort_by"]; ok {
		field, ok := by.(string)
		if !ok {
			return nil, invalid("`sort_by` must be a field name")
		}
		sort.SliceStable(matched, func(i, j int) bool {
			a, aok := matched[i][field]
			b, bok := matched[j][field]
			return compare(a, aok, b, bok) < 0
		})
		if query["descending"] == true {
			for i, j := 0, len(matched)-1; i < j; i, j = i+1, j-1 {
				matched[i], matched[j] = matched[j], matched[i]
			}
		}
	}
	total := len(matched)
	limit := total
	if raw, ok := query["limit"]; ok {
		n, isNumber := raw.(json.Number)
		value, err := n.Int64()
		if !isNumber || err != nil || value < 0 {
			return nil, invalid("`limit` must be a non-negative integer")
		}
		limit = min(int(value), total)
	}
	var fields []string
	if raw, ok := query["select"]; ok {
		list, ok := raw.([]any)
		if !ok {
			return nil, invalid("`select` must be an array of field names")
		}
		for _, f := range list {
			name, ok := f.(string)
			if !ok {
				return nil, invalid("`select` must be an array of field names")
			}
			fields = append(fields, name)
		}
	}
	out := []map[string]any{}
	for _, record := range matched[:limit] {
		if fields == nil {
			out = append(out, record)
			continue
		}
		picked := map[string]any{}
		for _, f := range fields {
			if v, ok := record[f]; ok {
				picked[f] = v
			}
		}
		out = append(out, picked)
	}
	return map[string]any{"count": len(out), "matched": total, "records": out}, nil
}

func Describe() Descriptor {
	return Descriptor{
		Name:        "json-transform",
		Version:     "0.1.0",
		Description: "Filters, projects, sorts and limits a list of JSON records.",
		InputSchema: schema,
	}
}

func Call(input string) witTypes.Result[string, Error] {
	fail := func(message string) witTypes.Result[string, Error] {
		return witTypes.Err[string, Error](MakeErrorInvalidInput(message))
	}
	decoder := json.NewDecoder(strings.NewReader(input))
	decoder.UseNumber()
	var query map[string]any
	if err := decoder.Decode(&query); err != nil {
		return fail(fmt.Sprintf("input is not JSON: %v", err))
	}
	result, err := transform(query)
	if err != nil {
		return fail(err.Error())
	}
	var out bytes.Buffer
	encoder := json.NewEncoder(&out)
	encoder.SetEscapeHTML(false)
	if err := encoder.Encode(result); err != nil {
		return witTypes.Err[string, Error](MakeErrorFailed(err.Error()))
	}
	return witTypes.Ok[string, Error](strings.TrimSpace(out.String()))
}
