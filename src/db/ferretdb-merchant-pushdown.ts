// The third patch of our FerretDB build (src/db/ferretdb-build.ts): a filter with a top-level
// `merchantId` equality or `$in` of strings is pushed down to SQLite as
// `WHERE _ferretdb_sjson->"merchantId" IN (…)`, written exactly as FerretDB writes the expression of
// an index on `merchantId` (metadata/registry.go), so SQLite answers it from any index that starts
// with `merchantId` ({merchantId, createdAt} and the others of orders, refunds and recap_days)
// instead of a scan of the whole table decoded in Go. The handler still applies the whole filter to
// every row it gets back ("Filter may be ignored, or safely applied partially"), so the results are
// the same as without the patch as long as the rows pushed down are a superset of the matches.
//
// That holds for a field that is a string in every document that has it: MongoDB's `{f: "x"}` also
// matches an array containing "x", which `f = '"x"'` in SQL would miss. paymail's schema stores
// `merchantId` as a string wherever it appears (mongoose `String` paths), and the patch is limited
// to that field and to plain ASCII values (the same JSON text on both sides, no escaping). What
// uses it: the daily recap reads its merchants a group at a time (src/services/recap-build.ts);
// MongoDB answers those reads from the same `{merchantId, …}` indexes.
/** Upstream (after our _id push-down patch) in Query, and in Explain: where the WHERE is used. */
const QUERY_BEFORE = '\n\tq += whereClause\n';
const EXPLAIN_BEFORE = '\n\torderByClause := prepareOrderByClause(params.Sort)\n';
const QUERY_AFTER = `\n\tif whereClause == "" {\n\t\twhereClause, args = paymailScalarPushdown(params.Filter)\n\t}\n${QUERY_BEFORE}`;
const EXPLAIN_AFTER = `\n\tif whereClause == "" {\n\t\twhereClause, args = paymailScalarPushdown(params.Filter)\n\t\tfilterPushdown = whereClause != ""\n\t}\n${EXPLAIN_BEFORE}`;

/** At most this many values in one IN list (SQLite allows 32,766 parameters). */
const MAX_IN_VALUES = 5000;

const HELPER = `// Added by paymail's build (src/db/ferretdb-merchant-pushdown.ts).

package sqlite

import (
\t"fmt"
\t"strings"

\t"github.com/FerretDB/FerretDB/internal/backends/sqlite/metadata"
\t"github.com/FerretDB/FerretDB/internal/handler/sjson"
\t"github.com/FerretDB/FerretDB/internal/types"
)

// paymailScalarFields are top-level fields that paymail stores as a string in every document
// that has them (never an array): an equality on one selects exactly the rows whose stored JSON
// text is the value's.
var paymailScalarFields = []string{"merchantId"}

// paymailPlainString reports whether s is stored as the same JSON text by sjson and by SQLite:
// printable ASCII without the characters JSON encoders may escape.
func paymailPlainString(s string) bool {
\tif s == "" {
\t\treturn false
\t}

\tfor i := 0; i < len(s); i++ {
\t\tc := s[i]
\t\tif c < 0x20 || c > 0x7e || c == '"' || c == '\\\\' || c == '<' || c == '>' || c == '&' {
\t\t\treturn false
\t\t}
\t}

\treturn true
}

// paymailStrings returns the strings a filter value selects: "x", {$eq: "x"} or {$in: ["x", …]}.
func paymailStrings(v any) ([]string, bool) {
\tswitch v := v.(type) {
\tcase string:
\t\treturn []string{v}, paymailPlainString(v)
\tcase *types.Document:
\t\tif v.Len() != 1 {
\t\t\treturn nil, false
\t\t}

\t\top := v.Keys()[0]
\t\targ, err := v.Get(op)
\t\tif err != nil {
\t\t\treturn nil, false
\t\t}

\t\tswitch op {
\t\tcase "$eq":
\t\t\ts, ok := arg.(string)
\t\t\treturn []string{s}, ok && paymailPlainString(s)
\t\tcase "$in":
\t\t\tarr, ok := arg.(*types.Array)
\t\t\tif !ok || arr.Len() == 0 || arr.Len() > ${MAX_IN_VALUES} {
\t\t\t\treturn nil, false
\t\t\t}

\t\t\tout := make([]string, 0, arr.Len())

\t\t\tfor i := 0; i < arr.Len(); i++ {
\t\t\t\te, err := arr.Get(i)
\t\t\t\tif err != nil {
\t\t\t\t\treturn nil, false
\t\t\t\t}

\t\t\t\ts, ok := e.(string)
\t\t\t\tif !ok || !paymailPlainString(s) {
\t\t\t\t\treturn nil, false
\t\t\t\t}

\t\t\t\tout = append(out, s)
\t\t\t}

\t\t\treturn out, true
\t\t}
\t}

\treturn nil, false
}

// paymailScalarPushdown returns a WHERE clause and its arguments selecting the rows whose scalar
// field is one of the filter's values, or "" when the filter has no such top-level condition.
// The top-level keys of a filter are ANDed, so the handler's full filter, applied to every row
// returned, gives the same result as a scan.
func paymailScalarPushdown(filter *types.Document) (string, []any) {
\tif filter == nil {
\t\treturn "", nil
\t}

\tfor _, field := range paymailScalarFields {
\t\tn := 0

\t\tfor _, k := range filter.Keys() {
\t\t\tif k == field {
\t\t\t\tn++
\t\t\t}
\t\t}

\t\t// Two keys of the same name would panic in Document.Get.
\t\tif n != 1 {
\t\t\tcontinue
\t\t}

\t\tv, err := filter.Get(field)
\t\tif err != nil {
\t\t\tcontinue
\t\t}

\t\tvalues, ok := paymailStrings(v)
\t\tif !ok {
\t\t\tcontinue
\t\t}

\t\targs := make([]any, len(values))

\t\tfor i, s := range values {
\t\t\tb, err := sjson.MarshalSingleValue(s)
\t\t\tif err != nil {
\t\t\t\treturn "", nil
\t\t\t}

\t\t\targs[i] = string(b)
\t\t}

\t\tmarks := strings.TrimSuffix(strings.Repeat("?, ", len(values)), ", ")

\t\treturn fmt.Sprintf(\` WHERE %s->%q IN (%s)\`, metadata.DefaultColumn, field, marks), args
\t}

\treturn "", nil
}
`;

/**
 * FerretDB's SQLite collection source (collection.go, after patchIdPushdown) with the push-down
 * added to Query and Explain, or undefined when upstream's code is not where the patch expects it.
 * HELPER_FILE holds the function they call.
 */
export function withMerchantPushdown(collectionGo: string): string | undefined {
  const inQuery = collectionGo.split(QUERY_BEFORE).length - 1;
  const inExplain = collectionGo.split(EXPLAIN_BEFORE).length - 1;
  if (inQuery !== 1 || inExplain !== 1) return undefined;
  return collectionGo.replace(QUERY_BEFORE, QUERY_AFTER).replace(EXPLAIN_BEFORE, EXPLAIN_AFTER);
}

/** The Go file the patch adds to the SQLite backend, and its content. */
export const HELPER_FILE = { name: 'paymail_scalar_pushdown.go', content: HELPER };
