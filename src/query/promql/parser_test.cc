#include "query/promql/parser.h"

#include <cmath>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "query/promql/printer.h"

namespace espy::query::promql {
namespace {

using ::testing::HasSubstr;

std::string Printed(std::string_view input) {
  auto e = ParseExpr(input);
  if (!e.ok()) return "ERROR: " + std::string(e.status().message());
  return ToString(**e);
}

std::string ErrorOf(std::string_view input) {
  auto e = ParseExpr(input);
  if (e.ok()) return "parsed as: " + ToString(**e);
  EXPECT_EQ(absl::StatusCode::kInvalidArgument, e.status().code());
  return std::string(e.status().message());
}

struct ParseCase {
  const char* input;
  const char* printed;
};

// Inputs that must parse, with their canonical printed form.
const ParseCase kValid[] = {
    // Number literals.
    {"1", "1"},
    {"+1", "1"},
    {"-1", "-1"},
    {"- -1", "1"},
    {".5", "0.5"},
    {"5.", "5"},
    {"1.5e3", "1500"},
    {"1e-3", "0.001"},
    {"1E+2", "100"},
    {"0x1F", "31"},
    {"0X1f", "31"},
    {"0755", "493"},
    {"08", "8"},
    {"Inf", "+Inf"},
    {"+inf", "+Inf"},
    {"-Inf", "-Inf"},
    {"NaN", "NaN"},
    {"nan", "NaN"},
    {"999999999999999999999999999999999999999999999999999999999999999999999999999",
     "1000000000000000000000000000000000000000000000000000000000000000000000000000"},
    {"1e-400", "0"},
    // String literals.
    {R"("double")", R"("double")"},
    {"'single'", R"("single")"},
    {"`raw\\n`", R"("raw\\n")"},
    {R"("a\"b")", R"("a\"b")"},
    {R"('a"b\'c')", R"("a\"b'c")"},
    {R"("\x41\101\u00e9\U0001F600\n\t")", "\"AA\xc3\xa9\xf0\x9f\x98\x80\\n\\t\""},
    // Vector selectors.
    {"foo", "foo"},
    {"foo:bar:baz", "foo:bar:baz"},
    {"foo{}", "foo"},
    {R"(foo{a="b"})", R"(foo{a="b"})"},
    {R"(foo{b="1", a!="2", c=~"3", d!~"4",})", R"(foo{a!="2",b="1",c=~"3",d!~"4"})"},
    {R"({__name__="foo"})", R"({__name__="foo"})"},
    {R"({__name__=~"foo.*", job="x"})", R"({__name__=~"foo.*",job="x"})"},
    {R"(foo{job='a\'b'})", R"(foo{job="a'b"})"},
    {R"(foo{by="x", on="y", offset="z", and="w"})", R"(foo{and="w",by="x",offset="z",on="y"})"},
    {"sum", "sum"},
    {"min", "min"},
    {"by", "by"},
    {"offset", "offset"},
    {"start", "start"},
    {"end", "end"},
    {R"(start{end="foo"})", R"(start{end="foo"})"},
    {"foo # a comment", "foo"},
    {"# leading comment\nfoo\n# trailing", "foo"},
    // Offsets and @.
    {"foo offset 5m", "foo offset 5m"},
    {"foo OFFSET 1h30m", "foo offset 1h30m"},
    {"foo offset -7m", "foo offset -7m"},
    {"foo offset 90m", "foo offset 1h30m"},
    {"foo offset 7d", "foo offset 1w"},
    {"foo offset 365d", "foo offset 1y"},
    {"foo @ 1603774568", "foo @ 1603774568.000"},
    {"foo @ -100", "foo @ -100.000"},
    {"foo @ +1.5", "foo @ 1.500"},
    {"foo @ start()", "foo @ start()"},
    {"foo @ end()", "foo @ end()"},
    {"foo @ 10 offset 5m", "foo @ 10.000 offset 5m"},
    {"foo offset 5m @ 10", "foo @ 10.000 offset 5m"},
    // Range selectors.
    {"foo[5m]", "foo[5m]"},
    {"foo[ 5m ]", "foo[5m]"},
    {"foo[1h30m]", "foo[1h30m]"},
    {"foo[100ms]", "foo[100ms]"},
    {R"(foo{a="b"}[5m] offset 1m)", R"(foo{a="b"}[5m] offset 1m)"},
    {"foo[5m] @ 100 offset -1m", "foo[5m] @ 100.000 offset -1m"},
    {"foo[5m] offset 1m @ start()", "foo[5m] @ start() offset 1m"},
    // Subqueries.
    {"foo[10m:]", "foo[10m:]"},
    {"foo[10m:1m]", "foo[10m:1m]"},
    {"foo[10m:1m] offset 5m", "foo[10m:1m] offset 5m"},
    {"foo offset 5m [10m:1m]", "foo offset 5m[10m:1m]"},
    {"rate(foo[5m])[30m:1m]", "rate(foo[5m])[30m:1m]"},
    {"min_over_time(rate(foo{bar=\"baz\"}[2s])[5m:])[4m:3s]",
     "min_over_time(rate(foo{bar=\"baz\"}[2s])[5m:])[4m:3s]"},
    {"(foo + bar)[5m:] @ end()", "(foo + bar)[5m:] @ end()"},
    {"sum(foo)[5m:1s] @ 100 offset 1m", "sum(foo)[5m:1s] @ 100.000 offset 1m"},
    // Binary operators.
    {"1 + 2", "1 + 2"},
    {"foo * bar", "foo * bar"},
    {"foo atan2 bar", "foo atan2 bar"},
    {"foo % 2", "foo % 2"},
    {"foo == bool 1", "foo == bool 1"},
    {"1 == bool 1", "1 == bool 1"},
    {"1 < bool 2", "1 < bool 2"},
    {"foo != bar", "foo != bar"},
    {"foo >= bar and baz", "foo >= bar and baz"},
    {"foo or bar unless baz", "foo or bar unless baz"},
    {"foo + on(a, b) bar", "foo + on (a, b) bar"},
    {"foo + on() bar", "foo + on () bar"},
    {"foo + ignoring(a) bar", "foo + ignoring (a) bar"},
    {"foo + ignoring() bar", "foo + bar"},
    {"foo * on(a) group_left(b, c) bar", "foo * on (a) group_left (b, c) bar"},
    {"foo * on(a) group_left bar", "foo * on (a) group_left () bar"},
    {"foo * ignoring(a) group_right(b) bar", "foo * ignoring (a) group_right (b) bar"},
    {"foo > bool on(a) bar", "foo > bool on (a) bar"},
    {"foo and on(a) bar", "foo and on (a) bar"},
    {"foo unless ignoring(a) bar", "foo unless ignoring (a) bar"},
    {"foo + on(a,) bar", "foo + on (a) bar"},
    {"foo unless on(start) bar", "foo unless on (start) bar"},
    {"foo + on(by, sum, bool) bar", "foo + on (by, sum, bool) bar"},
    {"foo + 1", "foo + 1"},
    {"1 - foo", "1 - foo"},
    {"foo + -1", "foo + -1"},
    {"-foo", "-foo"},
    {"+foo", "+foo"},
    {"-(1)", "-(1)"},
    {"-foo offset 5m", "-foo offset 5m"},
    // Aggregations.
    {"sum(foo)", "sum(foo)"},
    {"SUM(foo)", "sum(foo)"},
    {"sum by (job) (foo)", "sum by (job) (foo)"},
    {"sum(foo) by (job)", "sum by (job) (foo)"},
    {"sum without (job, instance) (foo)", "sum without (job, instance) (foo)"},
    {"sum without () (foo)", "sum without () (foo)"},
    {"sum by () (foo)", "sum(foo)"},
    {"sum by (job,) (foo)", "sum by (job) (foo)"},
    {"avg(foo)", "avg(foo)"},
    {"count(foo)", "count(foo)"},
    {"min(foo)", "min(foo)"},
    {"max(foo)", "max(foo)"},
    {"group(foo)", "group(foo)"},
    {"stddev(foo)", "stddev(foo)"},
    {"stdvar(foo)", "stdvar(foo)"},
    {"topk(5, foo)", "topk(5, foo)"},
    {"bottomk by (a) (5, foo)", "bottomk by (a) (5, foo)"},
    {"quantile(0.9, foo)", "quantile(0.9, foo)"},
    {R"(count_values("value", foo))", R"(count_values("value", foo))"},
    {"topk(scalar(bar), foo)", "topk(scalar(bar), foo)"},
    {"sum by (job) (rate(http_requests_total{job=\"api\"}[5m]))",
     "sum by (job) (rate(http_requests_total{job=\"api\"}[5m]))"},
    {"sum by (on, by, offset) (foo)", "sum by (on, by, offset) (foo)"},
    {"sum(foo) by (job) + 1", "sum by (job) (foo) + 1"},
    {"sum(sum(foo) by (a)) without (b)", "sum without (b) (sum by (a) (foo))"},
    // Functions.
    {"time()", "time()"},
    {"pi()", "pi()"},
    {"rate(foo[5m])", "rate(foo[5m])"},
    {"rate (foo[5m])", "rate(foo[5m])"},
    {"hour()", "hour()"},
    {"hour(foo)", "hour(foo)"},
    {"round(foo)", "round(foo)"},
    {"round(foo, 0.5)", "round(foo, 0.5)"},
    {"clamp(foo, 0, 1)", "clamp(foo, 0, 1)"},
    {"histogram_quantile(0.9, sum by (le) (rate(foo_bucket[5m])))",
     "histogram_quantile(0.9, sum by (le) (rate(foo_bucket[5m])))"},
    {R"q(label_replace(up, "a", "$1", "b", "(.*)"))q",
     R"q(label_replace(up, "a", "$1", "b", "(.*)"))q"},
    {R"(label_join(up, "a", ",", "b", "c", "d", "e"))",
     R"(label_join(up, "a", ",", "b", "c", "d", "e"))"},
    {R"(label_join(up, "a", ","))", R"(label_join(up, "a", ","))"},
    {"quantile_over_time(0.5, foo[1h])", "quantile_over_time(0.5, foo[1h])"},
    {"holt_winters(foo[1h], 0.5, 0.5)", "holt_winters(foo[1h], 0.5, 0.5)"},
    {"vector(1)", "vector(1)"},
    {"scalar(foo) + 1", "scalar(foo) + 1"},
    {"absent_over_time(foo[5m])", "absent_over_time(foo[5m])"},
    {"sin(foo) + deg(bar)", "sin(foo) + deg(bar)"},
    {"histogram_fraction(0, 1, foo)", "histogram_fraction(0, 1, foo)"},
    // Parentheses.
    {"(1)", "(1)"},
    {"((foo))", "((foo))"},
    {"(foo + bar) * baz", "(foo + bar) * baz"},
    // Whitespace and line breaks.
    {"sum(\n  rate(foo[5m])\n)\n", "sum(rate(foo[5m]))"},
};

TEST(ParserTest, ValidExpressionsPrintCanonically) {
  for (const ParseCase& c : kValid) {
    EXPECT_EQ(c.printed, Printed(c.input)) << "input: " << c.input;
  }
}

TEST(ParserTest, PrintedFormParsesToTheSameText) {
  for (const ParseCase& c : kValid) {
    std::string once = Printed(c.input);
    EXPECT_EQ(once, Printed(once)) << "input: " << c.input;
  }
}

struct PrecedenceCase {
  const char* input;
  const char* parenthesised;
};

// Renders the tree with explicit parentheses around every binary and unary
// expression, so the tests show how the parser grouped the operators.
std::string Grouped(const Expr& e) {
  if (auto* b = e.As<BinaryExpr>()) {
    return "(" + Grouped(*b->lhs) + " " + std::string(BinaryOpName(b->op)) + " " +
           Grouped(*b->rhs) + ")";
  }
  if (auto* u = e.As<UnaryExpr>()) {
    return std::string(u->op == UnaryOp::kMinus ? "-" : "+") + "[" + Grouped(*u->expr) + "]";
  }
  return ToString(e);
}

const PrecedenceCase kPrecedence[] = {
    {"1 + 2 * 3", "(1 + (2 * 3))"},
    {"1 * 2 + 3", "((1 * 2) + 3)"},
    {"1 - 2 - 3", "((1 - 2) - 3)"},
    {"2 ^ 3 ^ 2", "(2 ^ (3 ^ 2))"},
    {"-2 ^ 2", "-[(2 ^ 2)]"},
    {"-2 * 3", "(-2 * 3)"},
    {"-foo * bar", "(-[foo] * bar)"},
    {"-foo ^ bar", "-[(foo ^ bar)]"},
    {"2 * -3 ^ 2", "(2 * -[(3 ^ 2)])"},
    {"foo ^ -bar * baz", "((foo ^ -[bar]) * baz)"},
    {"foo ^ -bar ^ baz", "(foo ^ -[(bar ^ baz)])"},
    {"a + b * c ^ d", "(a + (b * (c ^ d)))"},
    {"a atan2 b * c", "((a atan2 b) * c)"},
    {"a * b atan2 c", "((a * b) atan2 c)"},
    {"a % b / c", "((a % b) / c)"},
    {"a > b + c", "(a > (b + c))"},
    {"a == b > c", "((a == b) > c)"},
    {"a and b or c", "((a and b) or c)"},
    {"a or b and c", "(a or (b and c))"},
    {"a or b unless c", "(a or (b unless c))"},
    {"a unless b and c", "((a unless b) and c)"},
    {"a and b > c", "(a and (b > c))"},
    {"a + b offset 5m", "(a + b offset 5m)"},
    {"a + b @ 5", "(a + b @ 5.000)"},
    {"1 + -2", "(1 + -2)"},
    {"1 - -2 ^ 2", "(1 - -[(2 ^ 2)])"},
    {"(a + b) * c", "((a + b) * c)"},
};

TEST(ParserTest, OperatorPrecedenceAndAssociativity) {
  for (const PrecedenceCase& c : kPrecedence) {
    auto e = ParseExpr(c.input);
    ASSERT_TRUE(e.ok()) << c.input << ": " << e.status();
    EXPECT_EQ(c.parenthesised, Grouped(**e)) << "input: " << c.input;
  }
}

struct ErrorCase {
  const char* input;
  const char* error;  // a substring of the message
};

const ErrorCase kInvalid[] = {
    // Lexical.
    {"", "1:1: parse error: no expression found in input"},
    {"# just a comment\n\n", "no expression found in input"},
    {".", "1:1: parse error: unexpected character: '.'"},
    {"2.5.", "unexpected character: '.'"},
    {"100..4", "unexpected number \".4\""},
    {"0deadbeef", "bad number or duration syntax: \"0de\""},
    {"1 !~ 1", "unexpected character after '!': '~'"},
    {"1 =~ 1", "unexpected character after '=': '~'"},
    {"(1))", "unexpected right parenthesis ')'"},
    {"((1)", "unclosed left parenthesis"},
    {"(", "unclosed left parenthesis"},
    {"foo[5m", "unclosed left bracket"},
    {"{", "unexpected end of input inside braces"},
    {"}", "unexpected character: '}'"},
    {"some}", "unexpected character: '}'"},
    {"foo$", "unexpected character: '$'"},
    {"\"abc", "unterminated quoted string"},
    {"`abc", "unterminated raw string"},
    {R"("\z")", "unknown escape sequence U+007A 'z'"},
    {"some_metric{a=\"\xff\"}", "1:15: parse error: invalid UTF-8 rune"},
    {"1e", "error parsing number"},
    {"1e400", "value out of range"},
    // Syntax.
    {"1+", "1:3: parse error: unexpected end of input"},
    {"1 /", "unexpected end of input"},
    {"*1", "1:1: parse error: unexpected <op:*>"},
    {"*test", "unexpected <op:*>"},
    {"foo bar", "1:5: parse error: unexpected identifier \"bar\""},
    {"1 2", "unexpected number \"2\""},
    {"-=", "unexpected \"=\""},
    {"++-++-+-+-<", "unexpected <op:<>"},
    {"e-+=/(0)", "unexpected \"=\""},
    {"5m", "unexpected duration \"5m\""},
    {"a - on(b) ignoring(c) d", "1:11: parse error: unexpected <ignoring>"},
    {"foo + group_left(baz) bar", "unexpected <group_left>"},
    {"foo + on(a) bool bar", "unexpected <bool>"},
    {"start()", "1:6: parse error: unexpected \"(\""},
    {"end()", "1:4: parse error: unexpected \"(\""},
    {"foo:bar(x)", "unexpected \"(\""},
    {"(1 2)", "unexpected number \"2\""},
    // Label matchers.
    {"some_metric{a=b}", "unexpected identifier \"b\" in label matching, expected string"},
    {"some_metric{a:b=\"b\"}", "unexpected character inside braces: ':'"},
    {"foo{a*\"b\"}", "unexpected character inside braces: '*'"},
    {"foo{gibberish}", "unexpected \"}\" in label matching, expected label matching operator"},
    {"foo{1}", "unexpected character inside braces: '1'"},
    {"foo{,}", "unexpected \",\" in label matching, expected identifier or \"}\""},
    {"foo{__name__= =}", "1:15: parse error: unexpected \"=\" in label matching, expected string"},
    {"foo{__name__ == \"bar\"}",
     "1:15: parse error: unexpected \"=\" in label matching, expected string"},
    {"foo{__name__=\"bar\" lol}",
     "unexpected identifier \"lol\" in label matching, expected \",\" or \"}\""},
    {"foo{a=~\"(\"}", "1:5: parse error: invalid regular expression for label \"a\""},
    {"{}", "1:1: parse error: vector selector must contain at least one non-empty matcher"},
    {"{x=\"\"}", "vector selector must contain at least one non-empty matcher"},
    {"{x=~\".*\"}", "vector selector must contain at least one non-empty matcher"},
    {"{x!~\".+\"}", "vector selector must contain at least one non-empty matcher"},
    {"{x!=\"a\"}", "vector selector must contain at least one non-empty matcher"},
    {"foo{__name__=\"bar\"}", "metric name must not be set twice: \"foo\" or \"bar\""},
    // Ranges, subqueries, offsets, @.
    {"foo[5mm]", "bad duration syntax: \"5mm\""},
    {"foo[5m1]", "bad duration syntax: \"5m1\""},
    {"foo[5m:1m1]", "bad number or duration syntax: \"1m1\""},
    {"foo[5y1hs]", "not a valid duration string: \"5y1hs\""},
    {"foo[5m1h]", "not a valid duration string: \"5m1h\""},
    {"foo[5m1m]", "not a valid duration string: \"5m1m\""},
    {"foo[0m]", "duration must be greater than 0"},
    {"foo[]", "missing unit character in duration"},
    {"foo[1]", "missing unit character in duration"},
    {"foo[5m:5]", "unexpected number \"5\" in subquery selector, expected duration or \"]\""},
    {"foo[5m x]", "unexpected character: 'x', expected ':'"},
    {"some_metric[5m] OFFSET 1", "unexpected number \"1\" in offset, expected duration"},
    {"some_metric[5m] OFFSET 1mm", "bad number or duration syntax: \"1mm\""},
    {"some_metric[5m] OFFSET", "unexpected end of input in offset, expected duration"},
    {"some_metric OFFSET 1m[5m]", "1:22: parse error: no offset modifiers allowed before range"},
    {"some_metric[5m] @ 1m",
     "1:19: parse error: unexpected duration \"1m\" in @, expected timestamp"},
    {"some_metric[5m] @", "unexpected end of input in @, expected timestamp"},
    {"some_metric @ 1234 [5m]", "1:20: parse error: no @ modifiers allowed before range"},
    {"(foo + bar)[5m]", "1:12: parse error: ranges only allowed for vector selectors"},
    {"rate(food[1m])[1h] offset 1h", "1:15: parse error: ranges only allowed for vector selectors"},
    {"1 offset 1d",
     "1:1: parse error: offset modifier must be preceded by an instant vector selector or range "
     "vector selector or a subquery"},
    {"foo offset 1s offset 2s", "offset may not be set multiple times"},
    {"foo offset +5m", "unexpected <op:+> in offset, expected duration"},
    {"rate(some_metric[5m]) @ 1234",
     "1:1: parse error: @ modifier must be preceded by an instant vector selector or range vector "
     "selector or a subquery"},
    {"foo @ 1 @ 2", "@ <timestamp> may not be set multiple times"},
    {"foo @ start() @ end()", "@ <timestamp> may not be set multiple times"},
    {"foo @ +Inf", "1:1: parse error: timestamp out of bounds for @ modifier: +Inf"},
    {"foo @ -Inf", "timestamp out of bounds for @ modifier: -Inf"},
    {"foo @ NaN", "timestamp out of bounds for @ modifier: NaN"},
    {"foo @ 9223372036854775808", "timestamp out of bounds for @ modifier"},
    {"foo @ start", "unexpected end of input in @, expected timestamp"},
    {"test[5d] OFFSET 10s [10m:5s]",
     "1:1: parse error: subquery is only allowed on instant vector, got matrix"},
    {"(foo + bar{nm=\"val\"})[5m:][10m:5s]",
     "subquery is only allowed on instant vector, got matrix"},
    {"\"a\"[5m:]", "subquery is only allowed on instant vector, got string"},
    // Binary expression type errors.
    {"1 == 1", "1:3: parse error: comparisons between scalars must use BOOL modifier"},
    {"1 and 1", "set operator \"and\" not allowed in binary scalar expression"},
    {"1 or 1", "set operator \"or\" not allowed in binary scalar expression"},
    {"1 unless 1", "set operator \"unless\" not allowed in binary scalar expression"},
    {"foo and 1", "set operator \"and\" not allowed in binary scalar expression"},
    {"1 and foo", "set operator \"and\" not allowed in binary scalar expression"},
    {"foo or 1", "set operator \"or\" not allowed in binary scalar expression"},
    {"1 or on(bar) foo", "vector matching only allowed between instant vectors"},
    {"foo == on(bar) 10", "vector matching only allowed between instant vectors"},
    {"foo and on(bar) group_left(baz) bar", "no grouping allowed for \"and\" operation"},
    {"foo and on(bar) group_right(baz) bar", "no grouping allowed for \"and\" operation"},
    {"foo or on(bar) group_left(baz) bar", "no grouping allowed for \"or\" operation"},
    {"foo unless on(bar) group_left(baz) bar", "no grouping allowed for \"unless\" operation"},
    {"http_requests{group=\"production\"} + on(instance) group_left(job,instance) "
     "cpu_count{type=\"smp\"}",
     "label \"instance\" must not occur in ON and GROUP clause at once"},
    {"foo + bool bar", "bool modifier can only be used on comparison operators"},
    {"foo + bool 10", "bool modifier can only be used on comparison operators"},
    {"foo and bool 10", "bool modifier can only be used on comparison operators"},
    {"foo[5m] + 1",
     "1:1: parse error: binary expression must contain only scalar and instant vector types"},
    {"1 + foo[5m]",
     "1:5: parse error: binary expression must contain only scalar and instant vector types"},
    {"\"a\" + 1", "binary expression must contain only scalar and instant vector types"},
    {"-\"string\"",
     "unary expression only allowed on expressions of type scalar or instant vector, got "
     "\"string\""},
    {"-test[5m]",
     "unary expression only allowed on expressions of type scalar or instant vector, got \"range "
     "vector\""},
    // Aggregations.
    {"sum without(==)(some_metric)", "unexpected <op:==> in grouping opts, expected label"},
    {"sum without(,)(some_metric)", "unexpected \",\" in grouping opts, expected label"},
    {"sum without(foo,,)(some_metric)", "unexpected \",\" in grouping opts, expected label"},
    {"sum by (a:b) (foo)", "unexpected metric identifier \"a:b\" in grouping opts, expected label"},
    {"sum by (a b) (foo)", "unexpected identifier \"b\" in grouping opts, expected \",\" or \")\""},
    {"sum some_metric by (test)", "unexpected identifier \"some_metric\""},
    {"sum (some_metric) by test", "unexpected identifier \"test\" in grouping opts"},
    {"sum () by (test)", "no arguments for aggregate expression provided"},
    {"MIN keep_common (some_metric)", "1:5: parse error: unexpected identifier \"keep_common\""},
    {"MIN (some_metric) keep_common", "unexpected identifier \"keep_common\""},
    {"sum (some_metric) without (test) by (test)", "unexpected <by>"},
    {"sum without (test) (some_metric) by (test)", "unexpected <by>"},
    {"sum(foo bar)", "unexpected identifier \"bar\" in aggregation"},
    {"sum(foo, bar)",
     "wrong number of arguments for aggregate expression provided, expected 1, got 2"},
    {"topk(some_metric)",
     "wrong number of arguments for aggregate expression provided, expected 2, got 1"},
    {"topk(some_metric,)", "trailing commas not allowed in function call args"},
    {"topk(some_metric, other_metric)",
     "1:6: parse error: expected type scalar in aggregation parameter, got instant vector"},
    {"count_values(5, other_metric)",
     "1:14: parse error: expected type string in aggregation parameter, got scalar"},
    {"quantile(\"a\", foo)", "expected type scalar in aggregation parameter, got string"},
    {"sum(foo[5m])",
     "1:5: parse error: expected type instant vector in aggregation expression, got range vector"},
    {"sum(1)", "expected type instant vector in aggregation expression, got scalar"},
    // Functions.
    {"floor()", "expected 1 argument(s) in call to \"floor\", got 0"},
    {"floor(some_metric, other_metric)", "expected 1 argument(s) in call to \"floor\", got 2"},
    {"floor(1)", "expected type instant vector in call to function \"floor\", got scalar"},
    {"hour(some_metric, some_metric, some_metric)",
     "expected at most 1 argument(s) in call to \"hour\", got 3"},
    {"time(some_metric)", "expected 0 argument(s) in call to \"time\", got 1"},
    {"label_join(up, \"a\")", "expected at least 3 argument(s) in call to \"label_join\", got 2"},
    {"label_join(up, \"a\", \",\", 1)",
     "expected type string in call to function \"label_join\", got scalar"},
    {"non_existent_function_far_bar()",
     "1:1: parse error: unknown function with name \"non_existent_function_far_bar\""},
    {"a>b()", "unknown function with name \"b\""},
    {"rate(some_metric)",
     "1:6: parse error: expected type range vector in call to function \"rate\", got instant "
     "vector"},
    {"rate(avg)", "expected type range vector"},
    {"rate(foo[5m]", "unclosed left parenthesis"},
    {"rate(foo[5m],)", "trailing commas not allowed in function call args"},
    {"label_replace(a, `b`, `c\xff`, `d`, `.*`)", "1:23: parse error: invalid UTF-8 rune"},
    {"histogram_quantile(foo, 0.9)",
     "expected type scalar in call to function \"histogram_quantile\""},
    {"abs(foo) offset 5m", "offset modifier must be preceded by"},
    // Positions on later lines.
    {"sum(\n  foo\n) by",
     "3:5: parse error: unexpected end of input in grouping opts, expected \"(\""},
    {"foo +\n  *", "2:3: parse error: unexpected <op:*>"},
};

TEST(ParserTest, InvalidExpressionsFailWithPrometheusLikeErrors) {
  for (const ErrorCase& c : kInvalid) {
    EXPECT_THAT(ErrorOf(c.input), HasSubstr(c.error)) << "input: " << c.input;
  }
}

TEST(ParserTest, NodesKeepTheirPositions) {
  std::string_view q = "sum by (job) (rate(foo{a=\"b\"}[5m] offset 1m)) + 2";
  auto e = ParseExpr(q);
  ASSERT_TRUE(e.ok()) << e.status();
  const auto* bin = (*e)->As<BinaryExpr>();
  ASSERT_NE(nullptr, bin);
  EXPECT_EQ(0, bin->pos.start);
  EXPECT_EQ(static_cast<int32_t>(q.size()), bin->pos.end);
  const auto* agg = bin->lhs->As<AggregateExpr>();
  ASSERT_NE(nullptr, agg);
  EXPECT_EQ("sum by (job) (rate(foo{a=\"b\"}[5m] offset 1m))",
            q.substr(agg->pos.start, agg->pos.end - agg->pos.start));
  const auto* call = agg->expr->As<Call>();
  ASSERT_NE(nullptr, call);
  EXPECT_EQ("rate(foo{a=\"b\"}[5m] offset 1m)",
            q.substr(call->pos.start, call->pos.end - call->pos.start));
  const auto* ms = call->args[0]->As<MatrixSelector>();
  ASSERT_NE(nullptr, ms);
  EXPECT_EQ("foo{a=\"b\"}[5m] offset 1m", q.substr(ms->pos.start, ms->pos.end - ms->pos.start));
  EXPECT_EQ("foo{a=\"b\"}",
            q.substr(ms->selector->pos.start, ms->selector->pos.end - ms->selector->pos.start));
  const auto* two = bin->rhs->As<NumberLiteral>();
  ASSERT_NE(nullptr, two);
  EXPECT_EQ(static_cast<int32_t>(q.size()) - 1, two->pos.start);
}

TEST(ParserTest, SelectorFields) {
  auto e = ParseExpr(R"(foo{a="b", c=~"d.*"} offset -5m @ 12.3456)");
  ASSERT_TRUE(e.ok()) << e.status();
  const auto* vs = (*e)->As<VectorSelector>();
  ASSERT_NE(nullptr, vs);
  EXPECT_EQ("foo", vs->name);
  ASSERT_EQ(3u, vs->matchers.size());
  EXPECT_EQ("a", vs->matchers[0].name());
  EXPECT_EQ(model::MatchType::kRegexMatch, vs->matchers[1].type());
  EXPECT_EQ("__name__", vs->matchers[2].name());
  EXPECT_EQ("foo", vs->matchers[2].value());
  EXPECT_EQ(-5 * 60 * 1000, vs->original_offset_ms);
  ASSERT_TRUE(vs->timestamp_ms.has_value());
  EXPECT_EQ(12346, *vs->timestamp_ms);
  EXPECT_EQ(ValueType::kVector, vs->Type());
}

TEST(ParserTest, SubqueryFields) {
  auto e = ParseExpr("rate(foo[1m])[1h:5m] @ end() offset 10m");
  ASSERT_TRUE(e.ok()) << e.status();
  const auto* sq = (*e)->As<SubqueryExpr>();
  ASSERT_NE(nullptr, sq);
  EXPECT_EQ(3600 * 1000, sq->range_ms);
  EXPECT_EQ(300 * 1000, sq->step_ms);
  EXPECT_EQ(600 * 1000, sq->original_offset_ms);
  EXPECT_EQ(AtPreprocessor::kEnd, sq->at);
  EXPECT_EQ(ValueType::kMatrix, sq->Type());
  EXPECT_NE(nullptr, sq->expr->As<Call>());
}

TEST(ParserTest, BinaryMatchingFields) {
  auto e = ParseExpr("a * on(x, y) group_right(z) b");
  ASSERT_TRUE(e.ok()) << e.status();
  const auto* b = (*e)->As<BinaryExpr>();
  ASSERT_NE(nullptr, b);
  ASSERT_TRUE(b->matching.has_value());
  EXPECT_EQ(VectorMatchCardinality::kOneToMany, b->matching->card);
  EXPECT_TRUE(b->matching->on);
  EXPECT_EQ((std::vector<std::string>{"x", "y"}), b->matching->matching_labels);
  EXPECT_EQ((std::vector<std::string>{"z"}), b->matching->include);

  auto set = ParseExpr("a and b");
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(VectorMatchCardinality::kManyToMany, (*set)->As<BinaryExpr>()->matching->card);

  auto scalar = ParseExpr("a + 1");
  ASSERT_TRUE(scalar.ok());
  EXPECT_FALSE((*scalar)->As<BinaryExpr>()->matching.has_value());
  EXPECT_EQ(ValueType::kVector, (*scalar)->Type());

  auto both = ParseExpr("1 + 2 * 3");
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(ValueType::kScalar, (*both)->Type());
}

TEST(ParserTest, AggregateFields) {
  auto e = ParseExpr("topk without (a) (3, foo)");
  ASSERT_TRUE(e.ok()) << e.status();
  const auto* a = (*e)->As<AggregateExpr>();
  ASSERT_NE(nullptr, a);
  EXPECT_EQ(AggregateOp::kTopk, a->op);
  EXPECT_TRUE(a->without);
  EXPECT_EQ((std::vector<std::string>{"a"}), a->grouping);
  ASSERT_NE(nullptr, a->param);
  EXPECT_EQ(3, a->param->As<NumberLiteral>()->value);
  EXPECT_EQ("foo", a->expr->As<VectorSelector>()->name);
}

// Prometheus 3's quoted names: names a JSON write may carry ("cpu usage%",
// "my-label") that PromQL cannot write bare.
const ParseCase kQuotedNames[] = {
    // A quoted string alone in braces is the metric name; printed as the
    // __name__ matcher, as Prometheus 3 prints it.
    {R"({"cpu usage%"})", R"({__name__="cpu usage%"})"},
    {R"({"cpu usage%", "my-label"="x"})", R"({"my-label"="x",__name__="cpu usage%"})"},
    {R"({"my-label"="x", "cpu usage%",})", R"({"my-label"="x",__name__="cpu usage%"})"},
    {R"({'cpu usage%'})", R"({__name__="cpu usage%"})"},
    // A quoted label name before any matcher operator.
    {R"(foo{"my-label"!="x", "a.b"=~"y.*", "c d"!~"z"})",
     R"(foo{"a.b"=~"y.*","c d"!~"z","my-label"!="x"})"},
    // Legacy names may be quoted too; they print bare.
    {R"(foo{"job"="api"})", R"(foo{job="api"})"},
    {R"({"__name__"="foo"})", R"({__name__="foo"})"},
    {R"({"ünïcode ✓"="1"})", R"({"ünïcode ✓"="1"})"},
    {R"({"a\"b"="1"})", R"({"a\"b"="1"})"},
    // Grouping, vector matching.
    {R"(sum by ("my-label") ({"cpu usage%"}))", R"(sum by ("my-label") ({__name__="cpu usage%"}))"},
    {R"(sum without ("my-label", job) (foo))", R"(sum without ("my-label", job) (foo))"},
    {R"(count by ("job",) (foo))", "count by (job) (foo)"},
    {R"(topk by ("a-b") (1, foo))", R"(topk by ("a-b") (1, foo))"},
    {R"(a * on ("my-label") group_left ("other label") b)",
     R"(a * on ("my-label") group_left ("other label") b)"},
    {R"(a / ignoring ("my-label") b)", R"(a / ignoring ("my-label") b)"},
    {R"(rate({"cpu usage%"}[5m] offset 1m))", R"(rate({__name__="cpu usage%"}[5m] offset 1m))"},
};

TEST(ParserTest, QuotedNames) {
  for (const ParseCase& c : kQuotedNames) {
    std::string once = Printed(c.input);
    EXPECT_EQ(c.printed, once) << "input: " << c.input;
    EXPECT_EQ(once, Printed(once)) << "input: " << c.input;
  }

  auto e = ParseExpr(R"({"cpu usage%", "my-label"=~"x|y"})");
  ASSERT_TRUE(e.ok()) << e.status();
  const auto* vs = (*e)->As<VectorSelector>();
  ASSERT_NE(nullptr, vs);
  EXPECT_EQ("", vs->name);  // as {__name__="cpu usage%"}
  ASSERT_EQ(2u, vs->matchers.size());
  EXPECT_EQ("__name__", vs->matchers[0].name());
  EXPECT_EQ(model::MatchType::kEqual, vs->matchers[0].type());
  EXPECT_EQ("cpu usage%", vs->matchers[0].value());
  EXPECT_EQ("my-label", vs->matchers[1].name());
  EXPECT_EQ(model::MatchType::kRegexMatch, vs->matchers[1].type());
  EXPECT_TRUE(vs->matchers[1].Matches("y"));

  auto agg = ParseExpr(R"(sum by ("my-label", job) (foo))");
  ASSERT_TRUE(agg.ok()) << agg.status();
  EXPECT_EQ((std::vector<std::string>{"my-label", "job"}), (*agg)->As<AggregateExpr>()->grouping);

  auto bin = ParseExpr(R"(a + on ("x y") group_right ("z-z") b)");
  ASSERT_TRUE(bin.ok()) << bin.status();
  EXPECT_EQ((std::vector<std::string>{"x y"}), (*bin)->As<BinaryExpr>()->matching->matching_labels);
  EXPECT_EQ((std::vector<std::string>{"z-z"}), (*bin)->As<BinaryExpr>()->matching->include);
}

TEST(ParserTest, QuotedNameErrors) {
  const ErrorCase cases[] = {
      // The name twice, inside and outside the braces.
      {R"(foo{"bar"})", R"(metric name must not be set twice: "foo" or "bar")"},
      {R"({"my-label"=})", "unexpected \"}\" in label matching, expected string"},
      {R"({"my-label"="x" "y"})",
       "unexpected string \"\\\"y\\\"\" in label matching, expected \",\" or \"}\""},
      {R"({"a" 1})", "1:6: parse error: unexpected character inside braces: '1'"},
      {R"({""="x"})", "1:2: parse error: invalid label name: \"\""},
      {R"({"\xff"="x"})", "invalid label name: \"\\xff\""},
      {R"(sum by ("") (foo))", "1:9: parse error: invalid label name for grouping: \"\""},
      {R"(a + on ("\xff") b)", "invalid label name for grouping: \"\\xff\""},
      // A quoted metric name that matches the empty string selects nothing.
      {R"({""})", "vector selector must contain at least one non-empty matcher"},
      // A string is no metric name outside braces.
      {R"("cpu usage%"{a="b"})", "unexpected \"{\""},
      {R"(sum by ("a" "b") (foo))", "unexpected string \"\\\"b\\\"\" in grouping opts"},
      // An unquoted name still has to be a legacy identifier.
      {R"(foo{my-label="x"})", "1:7: parse error: unexpected character inside braces: '-'"},
  };
  for (const ErrorCase& c : cases) {
    EXPECT_THAT(ErrorOf(c.input), HasSubstr(c.error)) << "input: " << c.input;
  }
}

TEST(ParserTest, NumberLiteralValues) {
  auto v = [](std::string_view s) {
    auto e = ParseExpr(s);
    EXPECT_TRUE(e.ok()) << s << ": " << e.status();
    return e.ok() ? (*e)->As<NumberLiteral>()->value : -12345.0;
  };
  EXPECT_EQ(255, v("0xff"));
  EXPECT_EQ(493, v("0755"));
  EXPECT_EQ(-1.5, v("-1.5"));
  EXPECT_TRUE(std::isinf(v("Inf")));
  EXPECT_TRUE(std::isnan(v("NaN")));
  EXPECT_EQ(1e10, v("1e10"));
}

TEST(ParserTest, FunctionTableCoversPrometheus) {
  for (std::string_view name : {"abs",
                                "absent",
                                "absent_over_time",
                                "avg_over_time",
                                "ceil",
                                "changes",
                                "clamp",
                                "clamp_max",
                                "clamp_min",
                                "count_over_time",
                                "days_in_month",
                                "day_of_month",
                                "day_of_week",
                                "day_of_year",
                                "delta",
                                "deriv",
                                "exp",
                                "floor",
                                "histogram_quantile",
                                "holt_winters",
                                "hour",
                                "idelta",
                                "increase",
                                "irate",
                                "label_join",
                                "label_replace",
                                "last_over_time",
                                "ln",
                                "log10",
                                "log2",
                                "max_over_time",
                                "min_over_time",
                                "minute",
                                "month",
                                "predict_linear",
                                "present_over_time",
                                "quantile_over_time",
                                "rate",
                                "resets",
                                "round",
                                "scalar",
                                "sgn",
                                "sort",
                                "sort_desc",
                                "sqrt",
                                "stddev_over_time",
                                "stdvar_over_time",
                                "sum_over_time",
                                "time",
                                "timestamp",
                                "vector",
                                "year",
                                "acos",
                                "acosh",
                                "asin",
                                "asinh",
                                "atan",
                                "atanh",
                                "cos",
                                "cosh",
                                "sin",
                                "sinh",
                                "tan",
                                "tanh",
                                "deg",
                                "rad",
                                "pi"}) {
    EXPECT_NE(nullptr, LookupFunction(name)) << name;
  }
  EXPECT_EQ(nullptr, LookupFunction("nope"));
  EXPECT_EQ(ValueType::kScalar, LookupFunction("scalar")->return_type);
  EXPECT_EQ(-1, LookupFunction("label_join")->variadic);
}

TEST(ParserTest, DeepNestingIsAnErrorNotACrash) {
  std::string deep_parens = std::string(100000, '(') + "1" + std::string(100000, ')');
  EXPECT_THAT(ErrorOf(deep_parens), HasSubstr("expression nested too deeply"));
  std::string long_chain = "1";
  for (int i = 0; i < 100000; ++i) long_chain += " + 1";
  EXPECT_THAT(ErrorOf(long_chain), HasSubstr("expression nested too deeply"));
  std::string minus_chain = std::string(100000, '-') + "1";
  EXPECT_THAT(ErrorOf(minus_chain), HasSubstr("expression nested too deeply"));
  std::string subqueries = "foo";
  for (int i = 0; i < 100000; ++i) subqueries += "[1m:]";
  EXPECT_THAT(ErrorOf(subqueries), HasSubstr("expression nested too deeply"));
  std::string calls;
  for (int i = 0; i < 100000; ++i) calls += "abs(";
  calls += "foo" + std::string(100000, ')');
  EXPECT_THAT(ErrorOf(calls), HasSubstr("expression nested too deeply"));

  // Realistic sizes still parse.
  std::string ors = "a";
  for (int i = 0; i < 900; ++i) ors += " or a";
  EXPECT_TRUE(ParseExpr(ors).ok());
  std::string nested = std::string(200, '(') + "foo" + std::string(200, ')');
  EXPECT_TRUE(ParseExpr(nested).ok());
  nested = "rate(foo[5m])";
  for (int i = 0; i < 50; ++i) {
    nested = "sum by (a) (max_over_time((" + nested + ")[5m:] @ 1))";
  }
  EXPECT_TRUE(ParseExpr(nested).ok());
}

// Random token soup: the parser must never crash, and whatever parses must
// print to text that parses back to the same text.
TEST(ParserTest, RandomInputsNeverCrashAndRoundTrip) {
  static constexpr const char* kPieces[] = {
      "foo",   "bar", "sum",    "rate", "(",          ")",       "{",    "}",         "[",
      "]",     "5m",  ":",      "1m",   ",",          "a=\"b\"", "1",    "2.5",       "-",
      "+",     "*",   "/",      "^",    "==",         "bool",    "and",  "or",        "by",
      "(job)", "on",  "offset", "@",    "start()",    "\"s\"",   "topk", "x=~\".*\"", " ",
      "#",     "\n",  "abs",    "Inf",  "group_left", "without", "!=",   "'",         "`",
  };
  constexpr size_t kNumPieces = sizeof(kPieces) / sizeof(kPieces[0]);
  uint64_t state = 0x9E3779B97F4A7C15ULL;
  auto next = [&state]() {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  int parsed = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string q;
    size_t n = 1 + next() % 12;
    for (size_t k = 0; k < n; ++k) q += kPieces[next() % kNumPieces];
    auto e = ParseExpr(q);
    if (!e.ok()) {
      EXPECT_EQ(absl::StatusCode::kInvalidArgument, e.status().code()) << q;
      continue;
    }
    ++parsed;
    std::string printed = ToString(**e);
    // As in Prometheus, +Inf prints with its sign, so "Inf ^ x" prints as
    // "+Inf ^ x", which reads back as +(Inf ^ x): same value, other tree.
    if (printed.find("Inf ^") != std::string::npos) continue;
    EXPECT_EQ(printed, Printed(printed)) << "input: " << q;
  }
  EXPECT_GT(parsed, 100);
}

TEST(ParseMetricSelectorTest, ReturnsMatchers) {
  auto m = ParseMetricSelector(R"(up{job="api", instance=~"a.*"})");
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(3u, m->size());
  EXPECT_EQ("job", (*m)[0].name());
  EXPECT_EQ("instance", (*m)[1].name());
  EXPECT_TRUE((*m)[1].Matches("abc"));
  EXPECT_EQ("__name__", (*m)[2].name());
  EXPECT_EQ("up", (*m)[2].value());

  auto only_braces = ParseMetricSelector(R"({__name__=~"http_.*"})");
  ASSERT_TRUE(only_braces.ok());
  EXPECT_EQ(1u, only_braces->size());

  auto quoted = ParseMetricSelector(R"({"cpu usage%", "my-label"="x"})");
  ASSERT_TRUE(quoted.ok()) << quoted.status();
  ASSERT_EQ(2u, quoted->size());
  EXPECT_EQ("__name__", (*quoted)[0].name());
  EXPECT_EQ("cpu usage%", (*quoted)[0].value());
  EXPECT_EQ("my-label", (*quoted)[1].name());

  auto bare = ParseMetricSelector("node_cpu:rate5m");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ("node_cpu:rate5m", (*bare)[0].value());
}

TEST(ParseMetricSelectorTest, RejectsNonSelectors) {
  EXPECT_THAT(std::string(ParseMetricSelector("up + 1").status().message()),
              HasSubstr("1:4: parse error: unexpected <op:+>"));
  EXPECT_THAT(std::string(ParseMetricSelector("rate(up[5m])").status().message()),
              HasSubstr("unexpected \"(\""));
  EXPECT_THAT(std::string(ParseMetricSelector("").status().message()),
              HasSubstr("no expression found"));
  EXPECT_THAT(std::string(ParseMetricSelector("up{a=}").status().message()),
              HasSubstr("expected string"));
  EXPECT_THAT(std::string(ParseMetricSelector("1").status().message()),
              HasSubstr("unexpected number \"1\""));
}

TEST(ParseDurationTest, PrometheusDurations) {
  EXPECT_EQ(0, *ParseDuration("0"));
  EXPECT_EQ(0, *ParseDuration("0s"));
  EXPECT_EQ(5 * 60 * 1000, *ParseDuration("5m"));
  EXPECT_EQ(90 * 60 * 1000, *ParseDuration("1h30m"));
  EXPECT_EQ(365LL * 86400 * 1000, *ParseDuration("1y"));
  EXPECT_EQ(7LL * 86400 * 1000, *ParseDuration("1w"));
  EXPECT_EQ(86400LL * 1000, *ParseDuration("1d"));
  EXPECT_EQ(100, *ParseDuration("100ms"));
  EXPECT_EQ(1500, *ParseDuration("1s500ms"));
  EXPECT_EQ(((((365LL + 14 + 3) * 24 + 4) * 60 + 5) * 60 + 6) * 1000 + 7,
            *ParseDuration("1y2w3d4h5m6s7ms"));
}

TEST(ParseDurationTest, Errors) {
  EXPECT_EQ("empty duration string", ParseDuration("").status().message());
  EXPECT_EQ("not a valid duration string: \"5m1h\"", ParseDuration("5m1h").status().message());
  for (std::string_view bad : {"5", "m", "1.5m", "5mm", "1h1h", "-5m", "5M", "1s1m", "5m ", "1x"}) {
    EXPECT_FALSE(ParseDuration(bad).ok()) << bad;
  }
  EXPECT_EQ("duration out of range", ParseDuration("300y").status().message());
  EXPECT_EQ("duration out of range", ParseDuration("99999999999999999999999y").status().message());
  EXPECT_TRUE(ParseDuration("290y").ok());
}

}  // namespace
}  // namespace espy::query::promql
