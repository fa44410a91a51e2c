// espy: the binary. Parses the command line, wires storage, ingest, query
// and HTTP together, and handles signals.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "CLI/CLI.hpp"
#include "absl/synchronization/mutex.h"
#include "base/log.h"
#include "config/config.h"
#include "graphite/listener.h"
#include "http/api.h"
#include "http/browse_handler.h"
#include "http/ingest_handlers.h"
#include "http/prom_api.h"
#include "http/server.h"
#include "http/stream_handler.h"
#include "server/data_dir_lock.h"
#include "storage/db.h"
#include "stream/hub.h"
#include "web/dashboard.h"

#ifndef ESPY_VERSION
#define ESPY_VERSION "dev"
#endif

namespace espy {
namespace {

std::string EnvName(const std::string& setting) {
  std::string env = "ESPY_";
  for (char c : setting) env += c == '-' ? '_' : static_cast<char>(std::toupper(c));
  return env;
}

// Blocks the shutdown signals in this thread and every thread it starts,
// so that Serve() can wait for them with sigwait.
sigset_t BlockShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

int Serve(const config::ServeConfig& cfg) {
  // Debian's Abseil is built with absl::Mutex's deadlock detector on; it
  // costs a graph lookup per lock (7% of an ingest profile). Off in serving.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  sigset_t signals = BlockShutdownSignals();
  std::signal(SIGPIPE, SIG_IGN);
  base::Logger log = base::MakeLogger("server", cfg.log_level);
  log->info("msg=starting version={} data_dir={} listen={}:{}", ESPY_VERSION, cfg.data_dir,
            cfg.listen_host, cfg.listen_port);

  // Held until exit: a second server on the same data dir would interleave
  // its writes with ours.
  auto dir_lock = server::DataDirLock::Acquire(cfg.data_dir);
  if (!dir_lock.ok()) {
    log->critical("msg=\"cannot open storage\" err=\"{}\"", dir_lock.status().message());
    return 1;
  }

  storage::DbOptions db_options;
  db_options.dir = cfg.data_dir;
  db_options.fsync = cfg.fsync;
  db_options.logger = base::MakeLogger("storage", cfg.log_level);
  db_options.retention_ms = cfg.retention.count();
  auto db = storage::Db::Open(db_options);
  if (!db.ok()) {
    log->critical("msg=\"cannot open storage\" err=\"{}\"", db.status().message());
    return 1;
  }

  http::SelfMetrics metrics(db->get());
  std::atomic<bool> ready{true};
  http::ApiOptions api;
  api.db = db->get();
  api.metrics = &metrics;
  api.ready = &ready;
  http::Router router;
  // Live stream (/v1/stream), the dashboard (/) and its JSON endpoints.
  stream::Hub hub((*db)->head());
  (*db)->SetCommitListener(
      [&hub](const auto& batch, const auto& refs) { hub.Publish(batch, refs); });
  http::StreamHandler streams({.hub = &hub, .logger = base::MakeLogger("stream", cfg.log_level)});
  streams.Register(router);
  http::RegisterBrowse(router, {.db = db->get(), .hub = &hub, .data_dir = cfg.data_dir});
  web::RegisterDashboard(router);
  metrics.AddCollector([&hub] { return hub.RenderMetrics(); });
  http::RegisterV1Metrics(router, api);
  http::RegisterStatus(router, api);
  http::PromApiOptions prom_api;
  prom_api.espy_version = ESPY_VERSION;
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
  server_options.logger = base::MakeLogger("http", cfg.log_level);
  server_options.on_response = [&metrics](std::string_view route, int status, double seconds) {
    metrics.ObserveRequest(route, status, seconds);
  };
  http::Server server(server_options, router);
  if (absl::Status s = server.Start(); !s.ok()) {
    log->critical("msg=\"cannot start HTTP server\" err=\"{}\"", s.message());
    return 1;
  }
  std::unique_ptr<graphite::Listener> graphite_listener;
  if (!cfg.graphite_listen.empty()) {
    graphite::ListenerOptions g;
    g.host = cfg.graphite_host;
    g.port = cfg.graphite_port;
    g.logger = base::MakeLogger("graphite", cfg.log_level);
    g.on_committed = [&metrics](uint64_t n) { metrics.AddSamples("graphite", n); };
    g.on_bad_lines = [&metrics](uint64_t n) { metrics.AddGraphiteBadLines(n); };
    g.on_failed = [&metrics](uint64_t n) { metrics.AddRejected("graphite", n); };
    graphite_listener = std::make_unique<graphite::Listener>(std::move(g), db->get());
    if (absl::Status s = graphite_listener->Start(); !s.ok()) {
      log->critical("msg=\"cannot start Graphite listener\" err=\"{}\"", s.message());
      return 1;
    }
  }
  log->info("msg=listening address={}:{}", cfg.listen_host, server.port());

  int sig = 0;
  sigwait(&signals, &sig);
  auto start = std::chrono::steady_clock::now();
  ready = false;
  log->info("msg=\"shutting down\" signal={}", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  streams.CloseAll();
  server.Shutdown();
  if (graphite_listener) graphite_listener->Stop();
  (*db)->Close();
  log->info("msg=stopped duration_ms={}", std::chrono::duration_cast<std::chrono::milliseconds>(
                                              std::chrono::steady_clock::now() - start)
                                              .count());
  return 0;
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
  std::string config_file;
  serve->add_option("--config", config_file, "YAML file with settings (keys as the flag names)")
      ->envname("ESPY_CONFIG");
  std::map<std::string, std::string> values;
  std::vector<std::pair<std::string, CLI::Option*>> options;
  for (const config::Setting& s : config::ServeSettings()) {
    std::string help =
        s.help + (s.default_value.empty() ? "" : " [default: " + s.default_value + "]");
    CLI::Option* opt =
        serve->add_option("--" + s.name, values[s.name], help)->envname(EnvName(s.name));
    options.emplace_back(s.name, opt);
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; a usage error exits 2, like a bad setting.
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }

  if (version->parsed()) {
    std::printf("espy %s\n", ESPY_VERSION);
    return 0;
  }
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
  return Serve(*cfg);
}

}  // namespace
}  // namespace espy

int main(int argc, char** argv) { return espy::Main(argc, argv); }
