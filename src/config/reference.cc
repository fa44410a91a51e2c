// The configuration reference (docs/configuration.md), generated from the
// settings table so that the document cannot drift from the code: `espy
// config reference` prints it, and a test diffs it against the committed file.
#include <string>

#include "config/config.h"
#include "fmt/format.h"

namespace espy::config {

namespace {

// A table cell: '|' would end the cell.
std::string Cell(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}

struct TypeDoc {
  const char* type;
  const char* meaning;
};

// What each type in ServeSettings() accepts; the words of the parsers'
// error messages.
constexpr TypeDoc kTypes[] = {
    {"DURATION",
     "a number and a unit, units summed: `500ms`, `30s`, `5m`, `1h30m`, `90d`, `2w`, "
     "`1y` (`d` = 24h, `w` = 7d, `y` = 365d)"},
    {"BYTES",
     "a whole number of bytes, or with a unit: `512KiB`, `64MiB`, `1GiB` (`KB`/`k`, "
     "`MB`/`M`, `GB`/`G` are the same powers of 1024)"},
    {"INT", "a whole number within the setting's range"},
    {"BOOL", "`true` or `false` (`1` or `0`)"},
    {"HOST:PORT",
     "an address and port: `127.0.0.1:5000`, `[::1]:5000`, `0.0.0.0:2003`; "
     "`localhost` means `127.0.0.1`"},
    {"PATH", "a file system path, relative to the working directory"},
    {"TIERS",
     "comma-separated `RESOLUTION:AGE` pairs of durations, each tier coarser and older "
     "than the one before: `5m:30d,1h:1y`"},
    {"a\\|b\\|c", "one of the words listed"},
};

}  // namespace

std::string ReferenceMarkdown() {
  std::string md;
  md +=
      "# Configuration reference\n\n"
      "<!-- Generated from src/config/config.cc by `espy config reference`; do not edit by "
      "hand.\n     Regenerate with `make reference`. -->\n\n"
      "`espy serve` takes each setting from, in this order: its command-line flag, its "
      "environment variable, the YAML file named by `--config`, its default. A setting given "
      "badly names itself and what it expects, and espy exits with status 2. `espy serve "
      "--help` prints the same list.\n\n"
      "## Settings\n\n"
      "| flag | environment variable | config file key | type | default | meaning |\n"
      "| --- | --- | --- | --- | --- | --- |\n";
  md += fmt::format(
      "| `--config` | `ESPY_CONFIG` | | `PATH` | none | the YAML config file: settings "
      "(keys below) and sections (see below) |\n");
  for (const Setting& s : ServeSettings()) {
    md += fmt::format("| `--{}` | `{}` | `{}` | `{}` | {} | {} |\n", s.name, EnvName(s.name),
                      s.name, Cell(s.type),
                      s.default_value.empty() ? "empty" : "`" + Cell(s.default_value) + "`",
                      Cell(s.help));
  }
  md +=
      "\nIn the config file a key may also be written with underscores (`data_dir` for "
      "`data-dir`). An unknown key is an error naming the file and line.\n\n"
      "## Types\n\n"
      "| type | what it takes |\n"
      "| --- | --- |\n";
  for (const TypeDoc& t : kTypes) md += fmt::format("| `{}` | {} |\n", t.type, t.meaning);
  md +=
      "\n## Sections of the config file\n\n"
      "Besides the settings, these top-level keys hold sections of their own. `espy "
      "check-config FILE` validates a file; `kill -HUP` or `POST /-/reload` re-reads its "
      "probes and collectors (other settings take effect at restart).\n\n"
      "| key | what it holds |\n"
      "| --- | --- |\n";
  for (const Section& s : ConfigSections()) {
    md += fmt::format("| `{}:` | {} |\n", s.name, Cell(s.help));
  }
  md +=
      "\n## Example\n\n"
      "```yaml\n"
      "listen: 127.0.0.1:5000\n"
      "data-dir: /var/lib/espy\n"
      "log-format: json\n"
      "probes:\n"
      "  - name: homepage\n"
      "    url: https://www.example.com/\n"
      "```\n";
  return md;
}

std::string ConfigFileHelp() {
  std::string text =
      "Config file (--config FILE): YAML, a mapping whose keys are the settings above (data-dir "
      "or data_dir) and these sections:\n";
  for (const Section& s : ConfigSections()) {
    text += fmt::format("  {:<12} {}\n", s.name + ":", s.help);
  }
  text +=
      "Validate one with `espy check-config FILE`. Full reference: docs/configuration.md, or "
      "`espy config reference`.";
  return text;
}

}  // namespace espy::config
