#include "rules/rule_file.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace espy::rules {
namespace {

using ::testing::ElementsAre;

TEST(RuleFile, ParsesGroupsAndRules) {
  RuleFileParse p = ParseRuleFile("r.yml", R"(groups:
  - name: node
    interval: 30s
    limit: 10
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
        labels:
          team: a
      - alert: Down
        expr: up == 0
        for: 5m
        keep_firing_for: 1m
        labels:
          severity: page
        annotations:
          summary: "{{ $labels.instance }} down"
)");
  ASSERT_TRUE(p.errors.empty()) << p.errors[0];
  ASSERT_EQ(p.file.groups.size(), 1u);
  const RuleGroup& g = p.file.groups[0];
  EXPECT_EQ(g.name, "node");
  EXPECT_EQ(g.interval_ms, 30000);
  EXPECT_EQ(g.limit, 10);
  ASSERT_EQ(g.rules.size(), 2u);
  EXPECT_EQ(g.rules[0].record, "job:up:sum");
  EXPECT_EQ(g.rules[0].labels.at("team"), "a");
  EXPECT_EQ(g.rules[1].alert, "Down");
  EXPECT_EQ(g.rules[1].for_ms, 300000);
  EXPECT_EQ(g.rules[1].keep_firing_for_ms, 60000);
  EXPECT_EQ(g.rules[1].annotations.at("summary"), "{{ $labels.instance }} down");
  EXPECT_EQ(g.rules[1].line, 10);
  EXPECT_EQ(p.file.RuleCount(), 2u);
}

TEST(RuleFile, EmptyFileHasNoGroups) {
  EXPECT_TRUE(ParseRuleFile("r.yml", "").errors.empty());
  EXPECT_TRUE(ParseRuleFile("r.yml", "# nothing\n").errors.empty());
  EXPECT_TRUE(ParseRuleFile("r.yml", "groups:\n").errors.empty());
}

TEST(RuleFile, SemanticErrorsNamePositionGroupAndRule) {
  RuleFileParse p = ParseRuleFile("r.yml", R"(groups:
  - name: g1
    rules:
      - record: job:up:sum
        alert: X
        expr: sum by (job) (up
      - record: "1bad"
        expr: up
        for: 5m
  - name: g1
    rules: []
  - name: ""
    rules:
      - expr: ""
)");
  EXPECT_THAT(
      p.errors,
      ElementsAre(
          "r.yml: 4:17: 5:16: group \"g1\", rule 1, \"X\": only one of 'record' and 'alert' must "
          "be set",
          "r.yml: 6:15: group \"g1\", rule 1, \"X\": could not parse expression: 1:17: parse "
          "error: unclosed left parenthesis",
          "r.yml: 7:17: group \"g1\", rule 2, \"1bad\": invalid field 'for' in recording rule",
          "r.yml: 7:17: group \"g1\", rule 2, \"1bad\": invalid recording rule name: 1bad",
          "r.yml: 10:5: groupname: \"g1\" is repeated in the same file",
          "r.yml: 12:5: Groupname must not be empty",
          "r.yml: 0:0: group \"\", rule 1, \"\": one of 'record' or 'alert' must be set",
          "r.yml: 14:15: group \"\", rule 1, \"\": field 'expr' must be set in rule"));
}

TEST(RuleFile, LabelsAnnotationsAndTemplates) {
  RuleFileParse p = ParseRuleFile("r.yml", R"(groups:
  - name: g
    rules:
      - alert: Y
        expr: up
        labels:
          bad-name: x
          __name__: y
        annotations:
          s: "{{ $labels.foo "
      - record: r
        expr: up
        labels:
          t: "{{ notchecked }}"
)");
  EXPECT_THAT(p.errors,
              ElementsAre("r.yml: group \"g\", rule 1, \"Y\": invalid label name: __name__",
                          "r.yml: group \"g\", rule 1, \"Y\": invalid label name: bad-name",
                          "r.yml: group \"g\", rule 1, \"Y\": annotation \"s\": template: "
                          "__alert_Y:1: unclosed action"));
}

TEST(RuleFile, StrictYamlRefusesUnknownAndRepeatedKeys) {
  RuleFileParse p = ParseRuleFile("r.yml", R"(groups:
  - name: a
    name: b
    foo: 1
    limit: abc
    rules:
      - record: x
        expr: up
        bar: 2
        labels: [a]
      - just a string
)");
  EXPECT_THAT(p.errors, ElementsAre("r.yml: yaml: unmarshal errors:\n"
                                    "  line 3: mapping key \"name\" already defined at line 2\n"
                                    "  line 4: field foo not found in type rulefmt.RuleGroup\n"
                                    "  line 5: cannot unmarshal !!str `abc` into int\n"
                                    "  line 9: field bar not found in type rulefmt.RuleNode\n"
                                    "  line 10: cannot unmarshal !!seq into map[string]string\n"
                                    "  line 11: cannot unmarshal !!str `just a ...` into "
                                    "rulefmt.RuleNode"));
  EXPECT_THAT(ParseRuleFile("r.yml", "- a\n").errors,
              ElementsAre("r.yml: yaml: unmarshal errors:\n"
                          "  line 1: cannot unmarshal !!seq into rulefmt.RuleGroups",
                          // promtool reports its second decode too
                          "r.yml: yaml: unmarshal errors:\n"
                          "  line 1: cannot unmarshal !!seq into rulefmt.ruleGroups"));
}

TEST(RuleFile, EmptyRecordIsPlacedAfterItsKey) {
  RuleFileParse p = ParseRuleFile(
      "r.yml", "groups:\n  - name: a\n    rules:\n      - record:\n        expr: up\n");
  EXPECT_THAT(p.errors, ElementsAre("r.yml: 4:16: group \"a\", rule 1, \"\": one of 'record' or "
                                    "'alert' must be set"));
}

TEST(RuleFile, BadDurationStopsTheDecodeWithItsPosition) {
  RuleFileParse p = ParseRuleFile("r.yml", R"(groups:
  - name: a
    limit: abc
    rules:
      - alert: x
        expr: up
        for: 5m1h
      - alert: y
        expr: up
        for: 1x
)");
  EXPECT_THAT(p.errors, ElementsAre("r.yml: 7:14: not a valid duration string: \"5m1h\""));
  EXPECT_THAT(ParseRuleFile("r.yml", "groups:\n- name: a\n  interval: \"\"\n").errors,
              ElementsAre("r.yml: 3:13: empty duration string"));
}

TEST(RuleFile, YamlSyntaxErrorNamesLine) {
  RuleFileParse p = ParseRuleFile("r.yml", "groups:\n  - name: [a\n");
  ASSERT_EQ(p.errors.size(), 1u);
  EXPECT_TRUE(p.errors[0].starts_with("r.yml: yaml: line ")) << p.errors[0];
}

TEST(RuleFile, UnreadableFile) {
  RuleFileParse p = LoadRuleFile("/nonexistent/rules.yml");
  EXPECT_THAT(p.errors, ElementsAre("/nonexistent/rules.yml: open /nonexistent/rules.yml: No "
                                    "such file or directory"));
}

}  // namespace
}  // namespace espy::rules

namespace espy::rules {
namespace {

// Mutations of a valid file: each parse ends in groups or in errors that
// name the file, never in a crash (run under the sanitizer build).
TEST(RuleFileRobustness, MutatedFilesNeverCrash) {
  const std::string seed = R"(groups:
  - name: node
    interval: 30s
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
        labels: {team: a}
      - alert: Down
        expr: up == 0
        for: 5m
        annotations:
          summary: "{{ $labels.instance }} {{ $value | humanize }}"
)";
  const std::string alphabet = "{}[]-:#&*!|>'\"%@` \n\tabc01$.";
  uint64_t state = 7;
  auto next = [&state] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<size_t>(state >> 33);
  };
  int valid = 0;
  for (int i = 0; i < 5000; ++i) {
    std::string text = seed;
    for (int m = 1 + next() % 3; m > 0; --m) {
      size_t at = next() % text.size();
      if (next() % 2) {
        text.insert(at, 1, alphabet[next() % alphabet.size()]);
      } else {
        text.erase(at, 1 + next() % 4);
      }
    }
    RuleFileParse p = ParseRuleFile("m.yml", text);
    for (const std::string& e : p.errors) EXPECT_TRUE(e.starts_with("m.yml: ")) << e;
    if (p.errors.empty()) ++valid;
  }
  EXPECT_GT(valid, 100);
}

}  // namespace
}  // namespace espy::rules
