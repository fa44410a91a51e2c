#include "rules/check.h"

#include "gtest/gtest.h"

namespace espy::rules {
namespace {

TEST(DuplicateRules, ReportsEachIdentityOnceSortedByName) {
  RuleFileParse p = ParseRuleFile("r.yml", R"(groups:
  - name: a
    rules:
      - alert: B
        expr: up
        labels: {z: "1", a: "2"}
      - alert: B
        expr: up == 1
        labels: {a: "2", z: "1"}
      - alert: B
        expr: up
        labels: {a: "2"}
      - record: A
        expr: up
  - name: b
    rules:
      - record: A
        expr: up
      - alert: A
        expr: up
)");
  ASSERT_TRUE(p.errors.empty());
  EXPECT_EQ(DuplicateRulesMessage(p.file),
            "lint error 2 duplicate rule(s) found.\n"
            "Metric: A\nLabel(s):\n"
            "Metric: B\nLabel(s):\n\ta: 2\n\tz: 1\n"
            "Might cause inconsistency while recording expressions");
}

TEST(DuplicateRules, NoneWhenLabelsDiffer) {
  RuleFileParse p = ParseRuleFile(
      "r.yml",
      "groups:\n- name: a\n  rules:\n  - record: x\n    expr: up\n  - record: x\n    expr: up\n"
      "    labels: {a: b}\n");
  ASSERT_TRUE(p.errors.empty());
  EXPECT_EQ(DuplicateRulesMessage(p.file), "");
}

}  // namespace
}  // namespace espy::rules
