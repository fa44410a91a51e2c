// espy: the binary. Parses the command line, wires storage, ingest, query
// and HTTP together, and handles signals.
#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/synchronization/mutex.h"
#include "auth/authenticator.h"
#include "base/log.h"
#include "base/threads.h"
#include "base/work_pool.h"
#include "config/config.h"
#include "dashboard/dashboard.h"
#include "graphite/listener.h"
#include "http/api.h"
#include "http/browse_handler.h"
#include "http/ingest_handlers.h"
#include "http/prom_api.h"
#include "http/server.h"
#include "http/stream_handler.h"
#include "http/uptime_handler.h"
#include "ingest/series_cache.h"
#include "probe/config.h"
#include "probe/report.h"
#include "probe/scheduler.h"
#include "rules/check.h"
#include "server/data_dir_lock.h"
#include "storage/db.h"
#include "stream/hub.h"

#ifndef ESPY_VERSION
#define ESPY_VERSION "dev"
#endif

namespace espy {
namespace {

// Blocks the shutdown and reload signals in this thread and every thread it
// starts, so that Serve() can wait for them with sigwait.
sigset_t BlockSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

// Each probe holds a socket while it runs: raise the open-file limit to
// what the system allows.
void RaiseFileLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

// Validates the settings as `raw` gives them (flags and environment over
// the file) and returns the file's probes and collectors.
absl::StatusOr<probe::MonitoringConfig> LoadChecks(const config::RawSettings& raw) {
  if (auto settings = config::Resolve(raw); !settings.ok()) return settings.status();
  if (raw.config_file.empty()) return probe::MonitoringConfig{};
  return probe::LoadMonitoring(raw.config_file);
}

// Re-reads the config file's probes and collectors; a bad file changes
// nothing. Thread-safe.
class Reloader {
 public:
  Reloader(config::RawSettings raw, config::ServeConfig running, probe::Scheduler* scheduler,
           base::Logger log)
      : raw_(std::move(raw)),
        running_(std::move(running)),
        scheduler_(scheduler),
        log_(std::move(log)) {}

  absl::StatusOr<std::string> Reload() {
    absl::MutexLock lock(&mu_);
    if (raw_.config_file.empty()) {
      base::Warn(log_, "nothing to reload: started without --config");
      return absl::FailedPreconditionError("no config file to reload (start with --config FILE)");
    }
    auto checks = LoadChecks(raw_);
    if (auto settings = config::Resolve(raw_);
        checks.ok() && settings.ok() && !(*settings == running_)) {
      base::Warn(log_,
                 "server settings in the file changed; they take effect at restart (a reload "
                 "applies probes and collectors only)");
    }
    if (!checks.ok()) {
      base::Error(log_, "reload failed; keeping the running configuration", "err",
                  checks.status().message());
      return checks.status();
    }
    std::string summary =
        fmt::format("{} probes, {} collectors", checks->probes.size(), checks->collectors.size());
    scheduler_->Apply(std::move(*checks));
    base::Info(log_, "reloaded", "file", raw_.config_file, "checks", summary);
    return summary;
  }

 private:
  absl::Mutex mu_;
  const config::RawSettings raw_;
  const config::ServeConfig running_;
  probe::Scheduler* scheduler_;
  base::Logger log_;
};

int Serve(const config::ServeConfig& cfg, const config::RawSettings& raw) {
  // Debian's Abseil is built with absl::Mutex's deadlock detector on; it
  // costs a graph lookup per lock (7% of an ingest profile). Off in serving.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  sigset_t signals = BlockSignals();
  std::signal(SIGPIPE, SIG_IGN);
  RaiseFileLimit();
  base::Logger log = base::MakeLogger("server", cfg.log_level, cfg.log_format);
  base::Info(log, "starting", "version", ESPY_VERSION, "data_dir", cfg.data_dir, "listen",
             fmt::format("{}:{}", cfg.listen_host, cfg.listen_port));

  // Held until exit: a second server on the same data dir would interleave
  // its writes with ours.
  auto dir_lock = server::DataDirLock::Acquire(cfg.data_dir);
  if (!dir_lock.ok()) {
    base::Error(log, "cannot open storage", "err", dir_lock.status().message());
    return 1;
  }

  storage::DbOptions db_options;
  db_options.dir = cfg.data_dir;
  db_options.fsync = cfg.fsync;
  db_options.logger = base::MakeLogger("storage", cfg.log_level, cfg.log_format);
  db_options.retention_ms = cfg.retention.count();
  db_options.tiers = cfg.downsampling;
  db_options.max_series = cfg.max_series;
  db_options.max_new_series_per_minute = cfg.max_new_series_per_minute;
  auto db = storage::Db::Open(db_options);
  if (!db.ok()) {
    base::Error(log, "cannot open storage", "err", db.status().message());
    return 1;
  }

  // PromQL queries run here, off the HTTP threads: a slow query never holds
  // a thread that ingestion needs.
  const int query_threads = base::ThreadsOrOnePerCore(cfg.query_max_concurrency);
  base::WorkPool query_pool({.threads = query_threads, .max_waiting = 200, .name = "espy-query"});
  http::SelfMetrics metrics(db->get());
  std::atomic<bool> ready{true};
  // Remote write, Influx and Graphite series as spelled on the wire -> ref.
  ingest::SeriesCache series_cache(cfg.ingest_series_cache_bytes);
  metrics.AddCollector([&series_cache] {
    ingest::SeriesCacheStats c = series_cache.stats();
    return fmt::format(
        "# HELP espy_ingest_series_cache_hits_total Ingested series found by their spelling "
        "on the wire.\n"
        "# TYPE espy_ingest_series_cache_hits_total counter\n"
        "espy_ingest_series_cache_hits_total {}\n"
        "# HELP espy_ingest_series_cache_misses_total Ingested series parsed in full.\n"
        "# TYPE espy_ingest_series_cache_misses_total counter\n"
        "espy_ingest_series_cache_misses_total {}\n"
        "# HELP espy_ingest_series_cache_entries Series spellings cached.\n"
        "# TYPE espy_ingest_series_cache_entries gauge\nespy_ingest_series_cache_entries {}\n"
        "# HELP espy_ingest_series_cache_bytes Estimated memory of the series spellings "
        "cached.\n"
        "# TYPE espy_ingest_series_cache_bytes gauge\nespy_ingest_series_cache_bytes {}\n",
        c.hits, c.misses, c.entries, c.bytes);
  });
  http::ApiOptions api;
  api.db = db->get();
  api.series_cache = &series_cache;
  api.metrics = &metrics;
  api.ready = &ready;
  // What the retention would drop at once is refused when written instead.
  api.limits.retention_millis = cfg.retention.count();
  http::Router router;
  // Basic auth and extra headers from the Prometheus web config file;
  // re-read with the rest on SIGHUP and POST /-/reload.
  std::unique_ptr<auth::Authenticator> web_auth;
  if (!cfg.web_config_file.empty()) {
    auto opened = auth::Authenticator::Open(cfg.web_config_file);
    if (!opened.ok()) {
      base::Error(log, "bad web config file", "err", opened.status().message());
      return 2;
    }
    web_auth = *std::move(opened);
    metrics.AddCollector([a = web_auth.get()] {
      return fmt::format(
          "# HELP espy_http_auth_failures_total Requests refused with 401, by reason: no "
          "basic-auth credentials, or a wrong user or password.\n"
          "# TYPE espy_http_auth_failures_total counter\n"
          "espy_http_auth_failures_total{{reason=\"missing\"}} {}\n"
          "espy_http_auth_failures_total{{reason=\"wrong\"}} {}\n",
          a->missing(), a->wrong());
    });
  }
  auto reload_web_config = [&web_auth, &log]() -> absl::Status {
    if (!web_auth) return absl::OkStatus();
    absl::Status s = web_auth->Reload();
    if (!s.ok()) {
      base::Error(log, "web config reload failed; keeping the running one", "err", s.message());
    }
    return s;
  };

  // Probes and collectors: their results go through the same commit path.
  auto checks = LoadChecks(raw);
  if (!checks.ok()) {
    base::Error(log, "bad configuration", "err", checks.status().message());
    return 2;
  }
  base::Logger probe_log = base::MakeLogger("probe", cfg.log_level, cfg.log_format);
  probe::SchedulerOptions probe_options;
  probe_options.logger = probe_log;
  probe_options.user_agent = "Espy-Probe/" ESPY_VERSION;
  probe_options.sink = [db = db->get(), &metrics, probe_log](model::SampleBatch batch) {
    uint64_t n = batch.samples.size();
    db->Commit(std::move(batch), [&metrics, probe_log, n](absl::Status s) {
      if (s.ok()) {
        metrics.AddSamples("probe", n);
      } else {
        base::Warn(probe_log, "probe results not stored", "err", s.message());
      }
    });
  };
  probe::Scheduler scheduler(probe_options);
  base::Info(log, "checks loaded", "probes", checks->probes.size(), "collectors",
             checks->collectors.size());
  scheduler.Apply(std::move(*checks));
  Reloader reloader(raw, cfg, &scheduler, log);
  metrics.AddCollector([&scheduler] { return scheduler.RenderMetrics(); });
  // The Uptime page's data (/v1/probes) and the public status page's
  // (/status/probes).
  http::RegisterUptime(
      router, {.db = db->get(), .snapshot = [&scheduler] { return scheduler.Snapshot(); }});
  router.Add("/-/reload", {boost::beast::http::verb::post},
             [&](const http::Request&, http::Reply reply) {
               if (absl::Status s = reload_web_config(); !s.ok()) {
                 reply(http::ErrorResponse(s));
                 return;
               }
               // Without --config the web config file is all there is to reload.
               auto summary = raw.config_file.empty() && web_auth
                                  ? absl::StatusOr<std::string>("none (no --config)")
                                  : reloader.Reload();
               if (!summary.ok()) {
                 reply(http::ErrorResponse(summary.status()));
                 return;
               }
               std::string body = "{\"status\":\"reloaded\",\"checks\":";
               http::AppendJsonString(*summary, &body);
               reply(http::MakeResponse(http::Status::ok, body + "}"));
             });
  // Live stream (/v1/stream), the dashboard (/) and its JSON endpoints.
  stream::HubOptions hub_options;
  hub_options.max_connections = cfg.stream_max_connections;
  hub_options.max_queue_points = cfg.stream_queue_points;
  // The stream reads through one Querier over all time, held as long as it.
  absl::StatusOr<std::unique_ptr<storage::Querier>> stream_reader =
      static_cast<const storage::Queryable&>(**db).Querier(INT64_MIN, INT64_MAX);
  if (!stream_reader.ok()) {
    base::Error(log, "cannot read storage", "err", stream_reader.status().message());
    return 1;
  }
  stream::Hub hub(**stream_reader, hub_options);
  query::engine::ResultCache query_cache({.max_bytes = cfg.query_cache_bytes});
  (*db)->SetCommitListener([&hub, &query_cache](const auto& batch, const auto& refs) {
    hub.Publish(batch, refs);
    if (!query_cache.enabled()) return;
    // A late sample can change cached range-query steps from its time on.
    int64_t oldest = INT64_MAX;
    for (const model::BatchSample& s : batch.samples) oldest = std::min(oldest, s.ts);
    if (oldest != INT64_MAX) query_cache.Invalidate(oldest);
  });
  http::StreamHandler streams(
      {.hub = &hub, .logger = base::MakeLogger("stream", cfg.log_level, cfg.log_format)});
  streams.Register(router);
  http::RegisterBrowse(router, {.db = db->get(), .hub = &hub, .data_dir = cfg.data_dir});
  dashboard::RegisterDashboard(router);
  metrics.AddCollector([&hub] { return hub.RenderMetrics(); });
  http::RegisterV1Metrics(router, api);
  http::RegisterStatus(router, api);
  http::PromApiOptions prom_api;
  prom_api.espy_version = ESPY_VERSION;
  prom_api.engine.timeout = cfg.query_timeout;
  prom_api.engine.max_samples = static_cast<int64_t>(cfg.query_max_samples);
  prom_api.engine.lookback_delta_ms = cfg.query_lookback_delta.count();
  prom_api.enable_admin_api = cfg.enable_admin_api;
  prom_api.query_pool = &query_pool;
  prom_api.cache = &query_cache;
  metrics.AddCollector([&query_cache] {
    query::engine::ResultCache::Stats c = query_cache.stats();
    return fmt::format(
        "# HELP espy_query_cache_hits_total Range queries that reused cached steps.\n"
        "# TYPE espy_query_cache_hits_total counter\nespy_query_cache_hits_total {}\n"
        "# HELP espy_query_cache_misses_total Cacheable range queries computed in full.\n"
        "# TYPE espy_query_cache_misses_total counter\nespy_query_cache_misses_total {}\n"
        "# HELP espy_query_cache_bytes Memory held by cached range-query steps.\n"
        "# TYPE espy_query_cache_bytes gauge\nespy_query_cache_bytes {}\n",
        c.hits, c.misses, c.bytes);
  });
  metrics.AddCollector([&query_pool] {
    base::WorkPool::Stats q = query_pool.stats();
    return fmt::format(
        "# HELP espy_queries_running PromQL queries being evaluated.\n"
        "# TYPE espy_queries_running gauge\nespy_queries_running {}\n"
        "# HELP espy_queries_waiting PromQL queries waiting for a query thread.\n"
        "# TYPE espy_queries_waiting gauge\nespy_queries_waiting {}\n"
        "# HELP espy_queries_refused_total PromQL queries refused with 503 (too many "
        "waiting).\n"
        "# TYPE espy_queries_refused_total counter\nespy_queries_refused_total {}\n",
        q.running, q.waiting, q.refused);
  });
  http::RegisterPromApi(router, api, prom_api);
  http::IngestHandlerOptions ingest_options;
  ingest_options.max_decoded_bytes = cfg.max_body_bytes;
  http::RegisterIngestHandlers(router, api, ingest_options);

  http::ServerOptions server_options;
  server_options.host = cfg.listen_host;
  server_options.port = cfg.listen_port;
  server_options.threads = cfg.threads;
  server_options.max_body_bytes = cfg.max_body_bytes;
  server_options.idle_timeout = cfg.idle_timeout;
  server_options.io_timeout = cfg.io_timeout;
  server_options.access_log = cfg.access_log;
  server_options.logger = base::MakeLogger("http", cfg.log_level, cfg.log_format);
  server_options.auth = web_auth.get();
  server_options.on_response = [&metrics](std::string_view route, int status, double seconds) {
    metrics.ObserveRequest(route, status, seconds);
  };
  http::Server server(server_options, router);
  if (absl::Status s = server.Start(); !s.ok()) {
    base::Error(log, "cannot start HTTP server", "err", s.message());
    return 1;
  }
  std::unique_ptr<graphite::Listener> graphite_listener;
  if (!cfg.graphite_listen.empty()) {
    graphite::ListenerOptions g;
    g.host = cfg.graphite_host;
    g.port = cfg.graphite_port;
    g.threads = cfg.threads;  // as many as HTTP
    g.logger = base::MakeLogger("graphite", cfg.log_level, cfg.log_format);
    g.series_cache = &series_cache;
    g.limits = api.limits;
    g.on_committed = [&metrics](uint64_t n) { metrics.AddSamples("graphite", n); };
    g.on_bad_lines = [&metrics](uint64_t n) { metrics.AddGraphiteBadLines(n); };
    g.on_failed = [&metrics](uint64_t n) { metrics.AddRejected("graphite", n); };
    graphite_listener = std::make_unique<graphite::Listener>(std::move(g), db->get());
    if (absl::Status s = graphite_listener->Start(); !s.ok()) {
      base::Error(log, "cannot start Graphite listener", "err", s.message());
      return 1;
    }
  }
  base::Info(log, "listening", "address", fmt::format("{}:{}", cfg.listen_host, server.port()));
  scheduler.Start();

  int sig = 0;
  while (sigwait(&signals, &sig) == 0 && sig == SIGHUP) {
    (void)reload_web_config();
    (void)reloader.Reload();
  }
  auto start = std::chrono::steady_clock::now();
  ready = false;
  base::Info(log, "shutting down", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  scheduler.Stop();
  streams.CloseAll();
  server.Shutdown();
  // Queries still waiting are dropped; running ones end within the query
  // timeout. Their replies go to the stopped server, which still exists.
  query_pool.Shutdown();
  if (graphite_listener) graphite_listener->Stop();
  (*db)->Close();
  base::Info(log, "stopped", "duration_ms",
             std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::steady_clock::now() - start)
                 .count());
  return 0;
}

int CheckConfig(const std::string& file) {
  config::RawSettings raw;
  raw.config_file = file;
  auto checks = LoadChecks(raw);
  if (!checks.ok()) {
    std::fprintf(stderr, "espy check-config: %s\n", std::string(checks.status().message()).c_str());
    return 1;
  }
  std::printf("%s: ok (%zu probes, %zu collectors)\n", file.c_str(), checks->probes.size(),
              checks->collectors.size());
  return 0;
}

// As `promtool check web-config`: a line per file on stderr, 1 if any failed.
int CheckWebConfig(const std::vector<std::string>& files) {
  int failed = 0;
  for (const std::string& f : files) {
    if (absl::Status s = auth::CheckWebConfigFile(f); !s.ok()) {
      std::fprintf(stderr, "%s FAILED: %s\n", f.c_str(), std::string(s.message()).c_str());
      failed = 1;
    } else {
      std::fprintf(stderr, "%s SUCCESS\n", f.c_str());
    }
  }
  return failed;
}

int ProbeOnce(bool once, bool as_json, const std::string& file,
              const std::vector<std::string>& targets) {
  auto fail = [](const std::string& message) {
    std::fprintf(stderr, "espy probe: %s\n", message.c_str());
    return 2;
  };
  if (!once) return fail("only --once is supported: espy probe --once [--config FILE] [TARGET...]");
  probe::MonitoringConfig checks;
  if (!file.empty()) {
    auto loaded = probe::LoadMonitoring(file);
    if (!loaded.ok()) return fail(std::string(loaded.status().message()));
    checks = std::move(*loaded);
  }
  std::vector<std::shared_ptr<const probe::ProbeSpec>> probes;
  for (const std::string& target : targets) {
    auto named = std::find_if(checks.probes.begin(), checks.probes.end(),
                              [&](const auto& p) { return p->name == target; });
    if (named != checks.probes.end()) {
      probes.push_back(*named);
      continue;
    }
    auto p = probe::ProbeForTarget(target);
    if (!p.ok()) return fail(std::string(p.status().message()));
    probes.push_back(*p);
  }
  if (targets.empty()) probes = checks.probes;
  if (probes.empty()) return fail("nothing to check: give a TARGET or a --config with probes");
  std::vector<probe::ProbeResult> results =
      probe::Scheduler::RunOnce(probes, "Espy-Probe/" ESPY_VERSION);
  double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::string out =
      as_json ? probe::FormatJson(probes, results) : probe::FormatTable(probes, results, now);
  std::fwrite(out.data(), 1, out.size(), stdout);
  bool all_up =
      std::all_of(results.begin(), results.end(), [](const auto& r) { return r.success; });
  return all_up ? 0 : 1;
}

int Main(int argc, char** argv) {
  CLI::App app{"Espy: metrics and uptime monitoring in one binary."};
  app.require_subcommand(1);
  app.set_version_flag("--version", ESPY_VERSION);

  CLI::App* version = app.add_subcommand("version", "Print the version and exit.");
  CLI::App* serve = app.add_subcommand(
      "serve",
      "Run the server. Each setting comes from its flag, else its ESPY_* environment "
      "variable, else the --config YAML file, else its default.");
  serve->footer(config::ConfigFileHelp());
  std::string config_file;
  serve
      ->add_option("--config", config_file,
                   "YAML file with settings (keys as the flag names) and sections (below)")
      ->envname("ESPY_CONFIG")
      ->type_name("PATH");
  std::map<std::string, std::string> values;
  std::vector<std::pair<std::string, CLI::Option*>> options;
  for (const config::Setting& s : config::ServeSettings()) {
    std::string help =
        s.help + (s.default_value.empty() ? "" : " [default: " + s.default_value + "]");
    CLI::Option* opt = serve->add_option("--" + s.name, values[s.name], help)
                           ->envname(config::EnvName(s.name))
                           ->type_name(s.type);
    options.emplace_back(s.name, opt);
  }

  CLI::App* check = app.add_subcommand(
      "check-config", "Validate a config file (settings, probes, collectors) and exit.");
  std::string check_file;
  check->add_option("FILE", check_file, "the YAML config file")->required()->type_name("PATH");

  CLI::App* check_cmd =
      app.add_subcommand("check", "Validate files as promtool does, without starting the server.");
  check_cmd->require_subcommand(1);
  CLI::App* check_web = check_cmd->add_subcommand(
      "web-config", "Validate Prometheus web config files, as promtool check web-config does.");
  std::vector<std::string> web_config_files;
  check_web->add_option("FILE", web_config_files, "web config files")
      ->required()
      ->type_name("PATH");

  // `espy check rules FILE...`: promtool's `check rules`, same output and exit codes.
  CLI::App* check_rules = check_cmd->add_subcommand(
      "rules",
      "Validate Prometheus rule files as `promtool check rules` does; exits 1 if one is bad.");
  std::vector<std::string> rule_files;
  rules::CheckOptions rule_check;
  check_rules->add_option("FILE", rule_files, "rule files (YAML)")->required()->type_name("PATH");
  check_rules->add_option("--lint", rule_check.lint, "all, duplicate-rules or none")
      ->check(CLI::IsMember({"all", "duplicate-rules", "none"}))
      ->capture_default_str();
  check_rules->add_flag("--lint-fatal", rule_check.lint_fatal, "lint findings exit 3");

  CLI::App* probe_cmd =
      app.add_subcommand("probe", "Run checks once and print the results; exits 1 if any failed.");
  bool once = false, as_json = false;
  std::string probe_config;
  std::vector<std::string> targets;
  probe_cmd->add_flag("--once", once, "run each check once, now (required)");
  probe_cmd->add_flag("--json", as_json, "print JSON instead of a table");
  probe_cmd
      ->add_option("--config", probe_config,
                   "YAML file whose probes to run (all, or those named as TARGET)")
      ->type_name("PATH");
  probe_cmd
      ->add_option("TARGET", targets,
                   "an http(s):// URL, host:port for TCP, or a probe name from --config")
      ->type_name("URL|HOST:PORT|NAME");

  CLI::App* config_cmd = app.add_subcommand("config", "Print facts about the configuration.");
  config_cmd->require_subcommand(1);
  CLI::App* reference = config_cmd->add_subcommand(
      "reference",
      "Print the configuration reference as Markdown (every setting's flag, environment "
      "variable, config file key, type and default; docs/configuration.md).");

  // `espy help [COMMAND...]`: the --help of espy or of that command.
  CLI::App* help = app.add_subcommand("help", "Print help for espy or a command and exit.");
  std::vector<std::string> help_path;
  help->add_option("COMMAND", help_path, "e.g. serve, or config reference")->type_name("COMMAND");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; a usage error exits 2, like a bad setting.
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }

  if (help->parsed()) {
    // The formatter directly: App::help() would describe the parsed `help`.
    const CLI::App* target = &app;
    std::string path = app.get_name();  // "espy config reference" on the usage line
    for (const std::string& name : help_path) {
      const auto subs = target->get_subcommands(
          [&](const CLI::App* sub) { return sub->get_name() == name && sub != help; });
      if (subs.empty()) {
        std::fprintf(stderr, "espy help: no command \"%s\"; run: espy help\n", name.c_str());
        return 2;
      }
      target = subs.front();
      path += " " + name;
    }
    std::fputs(target->get_formatter()->make_help(target, path, CLI::AppFormatMode::Normal).c_str(),
               stdout);
    return 0;
  }
  if (reference->parsed()) {
    std::fputs(config::ReferenceMarkdown().c_str(), stdout);
    return 0;
  }
  if (version->parsed()) {
    std::printf("espy %s\n", ESPY_VERSION);
    return 0;
  }
  if (check->parsed()) return CheckConfig(check_file);
  if (check_web->parsed()) return CheckWebConfig(web_config_files);
  if (check_rules->parsed()) return rules::CheckRules(rule_files, rule_check, stdout, stderr);
  if (probe_cmd->parsed()) return ProbeOnce(once, as_json, probe_config, targets);
  config::RawSettings raw;
  raw.config_file = config_file;
  for (const auto& [name, opt] : options) {
    if (opt->count() > 0) raw.values.emplace_back(name, values[name]);
  }
  absl::StatusOr<config::ServeConfig> cfg = config::Resolve(raw);
  if (!cfg.ok()) {
    std::fprintf(stderr, "espy serve: %s\n", std::string(cfg.status().message()).c_str());
    return 2;
  }
  return Serve(*cfg, raw);
}

}  // namespace
}  // namespace espy

int main(int argc, char** argv) { return espy::Main(argc, argv); }
