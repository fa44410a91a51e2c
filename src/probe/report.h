// Report: `espy probe --once` output, a table for people or JSON for
// scripts.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "probe/config.h"
#include "probe/result.h"

namespace espy::probe {

// One line per probe: target, result, status, time, certificate days, error.
// `now_seconds` dates the certificate countdown.
std::string FormatTable(const std::vector<std::shared_ptr<const ProbeSpec>>& probes,
                        const std::vector<ProbeResult>& results, double now_seconds);

// A JSON array of objects, one per probe, with every measured field.
std::string FormatJson(const std::vector<std::shared_ptr<const ProbeSpec>>& probes,
                       const std::vector<ProbeResult>& results);

}  // namespace espy::probe
