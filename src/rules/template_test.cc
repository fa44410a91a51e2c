#include "rules/template.h"

#include <cmath>

#include "absl/strings/match.h"
#include "fmt/format.h"
#include "gtest/gtest.h"

namespace espy::rules {
namespace {

std::string ParseError(std::string_view text) {
  auto t = Template::Parse("__alert_X", text);
  return t.ok() ? "ok" : std::string(t.status().message());
}

std::string Expand(std::string_view text, AlertTemplateData data = {}) {
  auto t = Template::Parse("__alert_X", text);
  if (!t.ok()) return "parse: " + std::string(t.status().message());
  auto out = t->Execute(data);
  return out.ok() ? *out : "exec: " + std::string(out.status().message());
}

TEST(TemplateParse, ReportsErrorsAsGoDoes) {
  EXPECT_EQ(ParseError("{{ $labels.foo "), "template: __alert_X:1: unclosed action");
  EXPECT_EQ(ParseError("{{ nofunc $value }}"),
            "template: __alert_X:1: function \"nofunc\" not defined");
  EXPECT_EQ(ParseError("{{ $undefined }}"),
            "template: __alert_X:1: undefined variable \"$undefined\"");
  EXPECT_EQ(ParseError("{{ if $value }}x"), "template: __alert_X:1: unexpected EOF");
  EXPECT_EQ(ParseError("{{ end }}"), "template: __alert_X:1: unexpected {{end}}");
  EXPECT_EQ(ParseError("{{ \"unterminated }}"),
            "template: __alert_X:1: unterminated quoted string");
  EXPECT_EQ(ParseError("a\nb\n{{ if }}{{ end }}"), "template: __alert_X:3: missing value for if");
  EXPECT_EQ(ParseError("{{ }}"), "template: __alert_X:1: missing value for command");
  EXPECT_EQ(ParseError("{{ break }}"), "template: __alert_X:1: {{break}} outside {{range}}");
  EXPECT_EQ(ParseError("{{ .Foo | 3 }}"),
            "template: __alert_X:1: non executable command in pipeline stage 2");
}

TEST(TemplateParse, AcceptsWhatGoAccepts) {
  for (const char* ok : {
           "plain text",
           "{{ $labels.instance }} is down",
           "{{ $value | humanize }}",
           "{{ printf \"%.2f\" $value }}",
           "{{ range $i, $x := .Labels }}{{ $x }}{{ else }}none{{ end }}",
           "{{ with $externalLabels.x }}{{ . }}{{ end }}",
           "{{ query \"up\" | first | value }}",
           "{{ 3 4 }}",
           "{{ .Foo | }}",
           "{{ $labels.job.x.y }}{{/* comment */}}{{- $value -}}",
           "{{ if eq $labels.severity \"page\" }}a{{ else if gt $value 1.0 }}b{{ else }}c{{ end }}",
           "{{ $x := 1 }}{{ $x = 2 }}{{ $x }}",
           "{{ (humanize $value) }} {{ `raw` }} {{ 'c' }} {{ nil }} {{ true }}",
       }) {
    EXPECT_EQ(ParseError(ok), "ok") << ok;
  }
}

TEST(TemplateExecute, LabelsValueAndExternalLabels) {
  AlertTemplateData d;
  d.labels = {{"instance", "web-1:9100"}, {"job", "node"}};
  d.external_labels = {{"cluster", "eu"}};
  d.external_url = "http://espy:5000";
  d.value = 0.5;
  EXPECT_EQ(Expand("{{ $labels.instance }} of {{ .Labels.job }} is {{ $value }}", d),
            "web-1:9100 of node is 0.5");
  EXPECT_EQ(Expand("{{ $externalLabels.cluster }} {{ $externalURL }} [{{ $labels.missing }}]", d),
            "eu http://espy:5000 []");
  EXPECT_EQ(Expand("{{ if gt $value 0.1 }}high{{ else }}low{{ end }}", d), "high");
  EXPECT_EQ(Expand("{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}", d),
            "instance=web-1:9100;job=node;");
  EXPECT_EQ(Expand("{{ with $labels.job }}job {{ . }}{{ end }}{{ with $labels.x }}x{{ end }}", d),
            "job node");
  EXPECT_EQ(Expand("a  {{- \" b \" -}}  c", d), "a b c");
  EXPECT_EQ(Expand("{{ $x := $labels.job }}{{ $x | toUpper }}", d), "NODE");
}

TEST(TemplateExecute, PrintsFloatsAsGo) {
  EXPECT_EQ(FormatGoFloat(1), "1");
  EXPECT_EQ(FormatGoFloat(0.5), "0.5");
  EXPECT_EQ(FormatGoFloat(123456), "123456");
  EXPECT_EQ(FormatGoFloat(1e6), "1e+06");
  EXPECT_EQ(FormatGoFloat(1234567), "1.234567e+06");
  EXPECT_EQ(FormatGoFloat(0.0001), "0.0001");
  EXPECT_EQ(FormatGoFloat(0.00001), "1e-05");
  EXPECT_EQ(FormatGoFloat(-2.5), "-2.5");
  EXPECT_EQ(FormatGoFloat(std::nan("")), "NaN");
  EXPECT_EQ(FormatGoFloat(-INFINITY), "-Inf");
}

// Expected strings are those of Prometheus' template documentation and tests.
TEST(TemplateExecute, HumanizeFunctions) {
  auto each = [](const std::string& fn, std::vector<double> values) {
    std::string out;
    for (double v : values) {
      AlertTemplateData d;
      d.value = v;
      out += Expand("{{ " + fn + " $value }}:", d);
    }
    return out;
  };
  EXPECT_EQ(each("humanize", {0, 1, 1234567, .12}), "0:1:1.235M:120m:");
  EXPECT_EQ(each("humanize1024", {0, 1, 1048576, .12}), "0:1:1Mi:0.12:");
  EXPECT_EQ(each("humanizeDuration", {0, 1, 60, 3600, 86400, 86400 + 3600,
                                      -(86400 * 2 + 3600 * 3 + 60 * 4 + 5), 899.99}),
            "0s:1s:1m 0s:1h 0m 0s:1d 0h 0m 0s:1d 1h 0m 0s:-2d 3h 4m 5s:14m 59s:");
  EXPECT_EQ(each("humanizeDuration", {.1, .0001, .12345, 60.1, 60.5, 1.2345, 12.345}),
            "100ms:100us:123.5ms:1m 0s:1m 0s:1.234s:12.35s:");
  EXPECT_EQ(each("humanizePercentage", {0, 0.1234567, 1.0, 1.5}), "0%:12.35%:100%:150%:");
  EXPECT_EQ(each("humanizeTimestamp", {1435065584.128}), "2015-06-23 13:19:44.128 +0000 UTC:");
  EXPECT_EQ(Expand("{{ humanize \"1234.5\" }}"), "1.234k");
  EXPECT_EQ(Expand("{{ humanize \"x\" }}"),
            "exec: template: __alert_X:1: executing \"__alert_X\": error calling humanize: "
            "strconv.ParseFloat: parsing \"x\": invalid syntax");
}

TEST(TemplateExecute, StringAndRegexFunctions) {
  AlertTemplateData d;
  d.value = 3.14159;
  EXPECT_EQ(Expand("{{ printf \"%.2f\" $value }}|{{ printf \"%s=%d\" \"n\" 5 }}|{{ printf "
                   "\"%5.1f%%\" 9.87 }}",
                   d),
            "3.14|n=5|  9.9%");
  EXPECT_EQ(Expand("{{ printf \"%d\" $value }}", d), "%!d(float64=3.14159)");
  EXPECT_EQ(Expand("{{ \"aa bb CC\" | title }} {{ toUpper \"aBc\" }} {{ toLower \"aBc\" }}"),
            "Aa Bb CC ABC abc");
  EXPECT_EQ(Expand("{{ reReplaceAll \"(a)b\" \"x$1\" \"ab\" }}"), "xa");
  EXPECT_EQ(Expand("{{ reReplaceAll \":[0-9]+$\" \"\" \"web-1:9100\" }}"), "web-1");
  EXPECT_EQ(Expand("{{ match \"a+\" \"baab\" }} {{ match \"^a+$\" \"baab\" }}"), "true false");
  EXPECT_EQ(Expand("{{ if and (match \"^w\" \"web\") (not false) }}yes{{ end }}"), "yes");
  EXPECT_EQ(Expand("{{ len \"abc\" }} {{ index $labels \"x\" }}."), "3 .");
}

TEST(TemplateExecute, QueryResultsAndRefusedFunctions) {
  EXPECT_EQ(Expand("{{ query \"up\" }}"),
            "exec: template: __alert_X:1: executing \"__alert_X\": error calling query: function "
            "\"query\" is not supported in Espy's alert templates");
  EXPECT_EQ(Expand("{{ 3 4 }}"),
            "exec: template: __alert_X:1: executing \"__alert_X\": can't give argument to "
            "non-function 3");
}

TEST(TemplateExecute, RangeBreakContinueAndElse) {
  AlertTemplateData d;
  d.labels = {{"a", "1"}, {"b", "2"}, {"c", "3"}};
  EXPECT_EQ(Expand("{{ range $k, $v := $labels }}{{ if eq $k \"b\" }}{{ continue }}{{ end }}{{ $v "
                   "}}{{ end }}",
                   d),
            "13");
  EXPECT_EQ(Expand("{{ range $labels }}{{ . }}{{ break }}{{ end }}", d), "1");
  EXPECT_EQ(Expand("{{ range $externalLabels }}x{{ else }}none{{ end }}", d), "none");
}

}  // namespace
}  // namespace espy::rules

namespace espy::rules {
namespace {

// Mutations of real templates: whatever they parse to must execute or fail
// cleanly (run under the sanitizer build to catch undefined behaviour).
TEST(TemplateRobustness, MutatedTemplatesNeverCrash) {
  const std::vector<std::string> seeds = {
      "{{ range $k, $v := $labels }}{{ $k }}={{ $v | toUpper }}{{ else }}none{{ end }}",
      "{{ if gt $value 1.0 }}{{ printf \"%5.2f%%\" $value }}{{ else if eq 1 1 }}x{{ end }}",
      "{{- with $externalLabels.c -}}{{ . | title }}{{ end }}{{/* c */}}{{ humanize $value }}",
      "{{ reReplaceAll \"(a+)\" \"$1${1}\" (printf \"%s\" `aa`) }}{{ 'c' }}{{ 0x1F }}{{ -1.5e3 }}",
  };
  const std::string alphabet = "{}()$.|:=\"'`-/* abcdefghijklmnopqrstuvwxyz0123456789%\n\\";
  uint64_t state = 42;
  auto next = [&state] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<size_t>(state >> 33);
  };
  AlertTemplateData data;
  data.labels = {{"job", "api"}};
  data.value = 1234.5;
  int parsed = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string t = seeds[next() % seeds.size()];
    for (int m = 1 + next() % 4; m > 0; --m) {
      size_t at = next() % (t.size() + 1);
      switch (next() % 3) {
        case 0:
          t.insert(at, 1, alphabet[next() % alphabet.size()]);
          break;
        case 1:
          if (at < t.size()) t.erase(at, 1 + next() % 3);
          break;
        default:
          if (at < t.size()) t[at] = alphabet[next() % alphabet.size()];
      }
    }
    auto parsed_template = Template::Parse("__alert_X", t);
    if (!parsed_template.ok()) {
      EXPECT_TRUE(absl::StartsWith(parsed_template.status().message(), "template: __alert_X:"))
          << parsed_template.status().message();
      continue;
    }
    ++parsed;
    (void)parsed_template->Execute(data);
  }
  EXPECT_GT(parsed, 1000);
}

TEST(TemplateRobustness, DeepNestingIsRefused) {
  std::string deep;
  for (int i = 0; i < 5000; ++i) deep += "{{ if true }}";
  EXPECT_EQ(ParseError(deep), "template: __alert_X:1: nesting too deep");
  EXPECT_EQ(ParseError("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}"),
            "template: __alert_X:1: nesting too deep");
}

}  // namespace
}  // namespace espy::rules

namespace espy::rules {
namespace {

// Expansions as Prometheus 2.42 makes them, taken from `promtool test rules`
// on an alert over m{job="db",instance="db-1:5432"} 0.0123 and
// m{job="api",instance="web-1:9100"} 1234567.891 (tests/rules has the files).
TEST(TemplateExecute, MatchesPrometheusExpansions) {
  const std::vector<std::pair<std::string, std::string>> templates = {
      {"a",
       "{{ $value }}|{{ humanize $value }}|{{ humanize1024 $value }}|{{ humanizeDuration $value "
       "}}|{{ humanizePercentage $value }}|{{ humanizeTimestamp $value }}"},
      {"b",
       "{{ printf \"%.2f\" $value }}|{{ printf \"%d\" 5 }}|{{ printf \"%5.1f%%\" $value }}|{{ "
       "printf \"%v %s\" $value $labels.job }}|{{ printf \"%q\" $labels.job }}|{{ printf \"%x\" "
       "\"hi\" }}|{{ printf \"%e\" $value }}|{{ printf \"%g\" $value }}|{{ printf \"%d\" $value "
       "}}"},
      {"c",
       "{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}|{{ $labels }}|{{ .Labels.job | "
       "title }}|{{ toUpper $labels.instance }}"},
      {"d",
       "{{ reReplaceAll \"(.*):(.*)\" \"$2/$1\" $labels.instance }}|{{ match \"^web\" "
       "$labels.instance }}|{{ $externalURL }}|{{ print 1 2 \"a\" \"b\" 3 }}|{{ len $labels "
       "}}|{{ index $labels \"job\" }}"},
      {"e",
       "{{ $value | printf \"%.1f\" }}|{{ 1.5 }}|{{ 1e6 }}|{{ 3 }}|{{ true }}|{{ eq $labels.job "
       "\"api\" }}|{{ ne 1 2 }}|{{ and 1 0 }}|{{ or 0 \"x\" }}|{{ not \"\" }}"},
      {"sev", "{{ if gt $value 100.0 }}crit{{ else }}warn{{ end }}"},
  };
  struct Case {
    AlertTemplateData data;
    std::map<std::string, std::string> want;
  };
  std::vector<Case> cases(2);
  cases[0].data.labels = {{"__name__", "m"}, {"instance", "db-1:5432"}, {"job", "db"}};
  cases[0].data.value = 0.0123;
  cases[0].want = {
      {"a", "0.0123|12.3m|0.0123|12.3ms|1.23%|1970-01-01 00:00:00.012 +0000 UTC"},
      {"b", "0.01|5|  0.0%|0.0123 db|\"db\"|6869|1.230000e-02|0.0123|%!d(float64=0.0123)"},
      {"c",
       "__name__=m;instance=db-1:5432;job=db;|map[__name__:m instance:db-1:5432 job:db]|Db|"
       "DB-1:5432"},
      {"d", "5432/db-1|false||1 2ab3|3|db"},
      {"e", "0.0|1.5|1e+06|3|true|false|true|0|x|true"},
      {"sev", "warn"}};
  cases[1].data.labels = {{"__name__", "m"}, {"instance", "web-1:9100"}, {"job", "api"}};
  cases[1].data.value = 1234567.891;
  cases[1].want = {
      {"a",
       "1.234567891e+06|1.235M|1.177Mi|14d 6h 56m 7s|1.235e+08%|1970-01-15 06:56:07.891 "
       "+0000 UTC"},
      {"b",
       "1234567.89|5|1234567.9%|1.234567891e+06 api|\"api\"|6869|1.234568e+06|"
       "1.234567891e+06|%!d(float64=1.234567891e+06)"},
      {"c",
       "__name__=m;instance=web-1:9100;job=api;|map[__name__:m instance:web-1:9100 job:api]|"
       "Api|WEB-1:9100"},
      {"d", "9100/web-1|true||1 2ab3|3|api"},
      {"e", "1234567.9|1.5|1e+06|3|true|true|true|0|x|true"},
      {"sev", "crit"}};
  for (const Case& c : cases) {
    for (const auto& [name, text] : templates) {
      EXPECT_EQ(Expand(text, c.data), c.want.at(name)) << name << " value " << c.data.value;
    }
  }
}

}  // namespace
}  // namespace espy::rules

namespace espy::rules {
namespace {

TEST(TemplateExecute, DefineTemplateAndBlock) {
  AlertTemplateData d;
  d.labels = {{"instance", "web-1"}, {"severity", "page"}};
  EXPECT_EQ(
      Expand("{{ define \"host\" }}<{{ .instance }}>{{ end }}{{ template \"host\" $labels }}", d),
      "<web-1>");
  EXPECT_EQ(Expand("{{ block \"sev\" $labels.severity }}[{{ . }}]{{ end }}", d), "[page]");
  EXPECT_EQ(Expand("{{ template \"nope\" }}", d),
            "exec: template: __alert_X:1: executing \"__alert_X\": template: no template \"nope\" "
            "associated with template \"__alert_X\"");
  // A called template sees only its argument.
  EXPECT_EQ(ParseError("{{ define \"x\" }}{{ $labels }}{{ end }}"),
            "template: __alert_X:1: undefined variable \"$labels\"");
}

TEST(TemplateExecute, RecursionAndBlowUpAreBounded) {
  EXPECT_EQ(Expand("{{ define \"r\" }}{{ template \"r\" }}{{ end }}{{ template \"r\" }}"),
            "exec: template: __alert_X:1: executing \"__alert_X\": exceeded maximum template depth "
            "(100)");
  // Each level calls the next twice: 2^40 calls unless the budget stops it.
  std::string t;
  for (int i = 0; i < 40; ++i) {
    t += fmt::format(
        "{{{{ define \"t{}\" }}}}{{{{ template \"t{}\" }}}}{{{{ template \"t{}\" }}}}"
        "{{{{ end }}}}",
        i, i + 1, i + 1);
  }
  t += "{{ define \"t40\" }}x{{ end }}{{ template \"t0\" }}";
  EXPECT_EQ(Expand(t),
            "exec: template: __alert_X:1: executing \"__alert_X\": template expansion "
            "too large");
}

TEST(TemplateParse, LiteralsAsGoReadsThem) {
  EXPECT_EQ(Expand("{{ \"\\u00e9\\x41\\101\\t|\" }}{{ 'a' }}{{ '\\n' }}{{ 0x1F }}{{ 1_000 }}"),
            "\u00e9AA\t|97"
            "10"
            "31"
            "1000");
  EXPECT_EQ(ParseError("{{ 'ab' }}"), "template: __alert_X:1: malformed character constant: 'ab'");
  EXPECT_EQ(ParseError("{{ \"a\\qb\" }}"), "template: __alert_X:1: invalid syntax");
  EXPECT_EQ(ParseError("{{ 0x }}"), "template: __alert_X:1: illegal number syntax: \"0x\"");
  EXPECT_EQ(ParseError("{{ $labels.a-b }}"), "template: __alert_X:1: bad character U+002D '-'");
  EXPECT_EQ(ParseError("{{ # }}"), "template: __alert_X:1: unexpected \"#\" in command");
}

}  // namespace
}  // namespace espy::rules
