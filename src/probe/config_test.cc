#include "probe/config.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "yaml-cpp/yaml.h"

namespace espy::probe {
namespace {

const char* FakeEnv(const char* name) {
  return std::string_view(name) == "API_KEY" ? "s3cret" : nullptr;
}

absl::StatusOr<MonitoringConfig> Parse(const std::string& yaml) {
  return ParseMonitoring(YAML::Load(yaml), "espy.yaml", FakeEnv);
}

std::string Error(const std::string& yaml) {
  auto c = Parse(yaml);
  EXPECT_FALSE(c.ok()) << yaml;
  return std::string(c.status().message());
}

TEST(ProbeConfigTest, ReadsHttpAndTcpProbesWithDefaults) {
  auto c = Parse(R"(
listen: 127.0.0.1:5000
probes:
  - name: homepage
    url: https://example.com/
    valid_status_codes: [200, 301]
    body_must_match: ["Welcome"]
    body_must_not_match: error
    follow_redirects: false
    headers: {Accept: text/html}
    labels: {team: web}
  - name: db
    tcp: db.internal:5432
    interval: 10s
    send: "PING\r\n"
    expect: PONG
)");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->probes.size(), 2u);
  const ProbeSpec& web = *c->probes[0];
  EXPECT_EQ(web.kind, ProbeSpec::Kind::kHttp);
  EXPECT_EQ(web.target, "https://example.com/");
  EXPECT_EQ(web.interval, std::chrono::seconds(30));
  EXPECT_EQ(web.timeout, std::chrono::seconds(10));
  EXPECT_EQ(web.valid_status_codes, (std::vector<int>{200, 301}));
  EXPECT_EQ(web.body_must_match.size(), 1u);
  EXPECT_EQ(web.body_must_not_match.size(), 1u);
  EXPECT_FALSE(web.follow_redirects);
  EXPECT_TRUE(web.StatusValid(301));
  EXPECT_FALSE(web.StatusValid(204));
  EXPECT_EQ(web.labels, (std::vector<model::Label>{{"team", "web"}}));
  const ProbeSpec& db = *c->probes[1];
  EXPECT_EQ(db.kind, ProbeSpec::Kind::kTcp);
  EXPECT_EQ(db.target, "db.internal:5432");
  EXPECT_EQ(db.send, "PING\r\n");
  EXPECT_EQ(db.timeout, std::chrono::seconds(10));
  ASSERT_NE(db.expect, nullptr);
  ProbeSpec defaults;
  EXPECT_TRUE(defaults.StatusValid(204));
  EXPECT_FALSE(defaults.StatusValid(302));
}

TEST(ProbeConfigTest, ReadsCollectorsAndSubstitutesEnvironmentVariables) {
  auto c = Parse(R"(
collectors:
  - name: prices
    url: http://127.0.0.1:9/price?key=${API_KEY}
    headers: {Authorization: "Bearer ${API_KEY}"}
    interval: 1m
    metrics:
      - name: crypto_price
        path: $.*.*
        labels: {coin: $1, currency: $2, source: gecko}
      - name: stock_price
        path: $.quotes[*]
        value: .price
        labels: {symbol: .symbol}
)");
  ASSERT_TRUE(c.ok()) << c.status();
  const CollectorSpec& p = *c->collectors[0];
  EXPECT_EQ(p.url, "http://127.0.0.1:9/price?key=s3cret");
  EXPECT_EQ(p.url_template, "http://127.0.0.1:9/price?key=${API_KEY}");
  EXPECT_EQ(p.headers[0].second, "Bearer s3cret");
  ASSERT_EQ(p.metrics.size(), 2u);
  EXPECT_EQ(p.metrics[0].labels[0].kind, Extraction::LabelSource::Kind::kCapture);
  EXPECT_EQ(p.metrics[0].labels[1].capture, 2);
  EXPECT_EQ(p.metrics[0].labels[2].literal, "gecko");
  EXPECT_EQ(p.metrics[1].labels[0].kind, Extraction::LabelSource::Kind::kField);
  EXPECT_EQ(p.metrics[1].value->text(), ".price");
}

TEST(ProbeConfigTest, EachMistakeNamesLineItemAndField) {
  EXPECT_EQ(Error("probes:\n  - name: a\n    url: https://x/\n    timeout: soon\n"),
            "config file espy.yaml line 4: probes[0] \"a\": timeout: want a duration like 90d, "
            "1h30m, 2w, 1y or 500ms, got \"soon\"");
  EXPECT_EQ(Error("probes:\n  - name: a\n    url: ftp://x/\n"),
            "config file espy.yaml line 3: probes[0] \"a\": url: want an http:// or https:// URL "
            "with a host, got \"ftp://x/\"");
  EXPECT_EQ(Error("probes:\n  - name: a\n"),
            "config file espy.yaml line 2: probes[0] \"a\": want exactly one of url (HTTP/HTTPS) "
            "or tcp (host:port)");
  EXPECT_EQ(Error("probes:\n  - url: http://x/\n"),
            "config file espy.yaml line 2: probes[0]: name: required");
  EXPECT_THAT(Error("probes:\n  - name: a\n    url: http://x/\n    intervall: 5s\n"),
              testing::StartsWith("config file espy.yaml line 4: probes[0]: intervall: unknown "
                                  "field (want one of name, url, tcp,"));
  EXPECT_EQ(Error("probes:\n  - name: a\n    tcp: host\n"),
            "config file espy.yaml line 3: probes[0] \"a\": tcp: want host:port such as "
            "db.internal:5432, got \"host\"");
  EXPECT_EQ(Error("probes:\n  - name: a\n    url: http://x/\n    valid_status_codes: [200, 9]\n"),
            "config file espy.yaml line 4: probes[0] \"a\": valid_status_codes: want HTTP status "
            "codes from 100 to 599, got \"9\"");
  EXPECT_THAT(Error("probes:\n  - name: a\n    url: http://x/\n    body_must_match: ['(']\n"),
              testing::StartsWith("config file espy.yaml line 4: probes[0] \"a\": "
                                  "body_must_match: bad regular expression \"(\""));
  EXPECT_EQ(Error("probes:\n  - name: a\n    url: http://x/\n    interval: 5s\n    timeout: 10s\n"),
            "config file espy.yaml line 5: probes[0] \"a\": timeout: want at most the interval (a "
            "check must end before the next starts)");
  EXPECT_EQ(Error("probes:\n  - name: a\n    url: http://x/\n  - name: a\n    tcp: h:1\n"),
            "config file espy.yaml line 4: probes[1]: name \"a\" is already used by another item");
  EXPECT_EQ(Error("probes:\n  - name: a\n    url: http://x/\n    send: hi\n"),
            "config file espy.yaml line 4: probes[0] \"a\": send: only for tcp probes");
  EXPECT_EQ(Error("probes:\n  - name: a\n    url: http://x/\n    labels: {instance: x}\n"),
            "config file espy.yaml line 4: probes[0] \"a\": labels.instance: this label is set "
            "by Espy itself");
  EXPECT_EQ(Error("probes: {a: 1}\n"),
            "config file espy.yaml line 1: probes: want a list of items");
}

TEST(ProbeConfigTest, CollectorMistakesNameTheirField) {
  EXPECT_EQ(Error("collectors:\n  - name: c\n    url: http://x/?k=${NOPE}\n    metrics: "
                  "[{name: m, path: $.a}]\n"),
            "config file espy.yaml line 3: collectors[0] \"c\": url: environment variable NOPE is "
            "not set");
  EXPECT_EQ(Error("collectors:\n  - name: c\n    url: http://x/\n"),
            "config file espy.yaml line 2: collectors[0] \"c\": metrics: want a list of "
            "extractions, each with name and path (e.g. {name: btc_usd, path: $.bitcoin.usd})");
  EXPECT_EQ(Error("collectors:\n  - name: c\n    url: http://x/\n    metrics:\n      - name: 1m\n"
                  "        path: $.a\n"),
            "config file espy.yaml line 5: collectors[0] \"c\" metrics[0]: name: want a metric "
            "name of letters, digits, _ and :, got \"1m\"");
  EXPECT_THAT(Error("collectors:\n  - name: c\n    url: http://x/\n    metrics:\n      - name: m\n"
                    "        path: a.b\n"),
              testing::HasSubstr("metrics[0]: path: bad JSON path \"a.b\""));
  EXPECT_EQ(Error("collectors:\n  - name: c\n    url: http://x/\n    metrics:\n      - name: m\n"
                  "        path: $.*\n        labels: {k: $2}\n"),
            "config file espy.yaml line 5: collectors[0] \"c\" metrics[0]: labels.k: \"$2\" wants "
            "a wildcard number from 1 to 1 (the path \"$.*\" has 1 wildcards)");
}

TEST(ProbeConfigTest, CommandLineTargets) {
  auto web = ProbeForTarget("https://example.com/health");
  ASSERT_TRUE(web.ok());
  EXPECT_EQ((*web)->kind, ProbeSpec::Kind::kHttp);
  auto tcp = ProbeForTarget("127.0.0.1:22");
  ASSERT_TRUE(tcp.ok());
  EXPECT_EQ((*tcp)->kind, ProbeSpec::Kind::kTcp);
  EXPECT_EQ(ProbeForTarget("example.com").status().message(),
            "target \"example.com\": want an http(s):// URL or host:port");
}

}  // namespace
}  // namespace espy::probe
