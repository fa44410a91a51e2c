#include "ingest/bad_input.h"

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "fmt/format.h"

namespace espy::ingest {

namespace {
constexpr std::string_view kPayloadUrl = "espy/bad_input";
}  // namespace

absl::Status MakeBadInput(int64_t item, std::string_view field, std::string_view problem) {
  std::string message;
  if (item >= 0) message += fmt::format("item {}: ", item);
  if (!field.empty()) message += fmt::format("field \"{}\": ", field);
  message += problem;
  absl::Status status = absl::InvalidArgumentError(message);
  // Payload: "<item>\n<field>\n<problem>"; field names may hold any byte but
  // newline-free problems are ours, so split at the first two newlines only.
  status.SetPayload(absl::string_view(kPayloadUrl.data(), kPayloadUrl.size()),
                    absl::Cord(fmt::format("{}\n{}\n{}", item, field, problem)));
  return status;
}

std::optional<BadInput> GetBadInput(const absl::Status& status) {
  absl::optional<absl::Cord> payload =
      status.GetPayload(absl::string_view(kPayloadUrl.data(), kPayloadUrl.size()));
  if (!payload) return std::nullopt;
  std::string text(*payload);
  std::vector<std::string> parts = absl::StrSplit(text, absl::MaxSplits('\n', 2));
  if (parts.size() != 3) return std::nullopt;
  BadInput out;
  if (!absl::SimpleAtoi(parts[0], &out.item)) return std::nullopt;
  out.field = std::move(parts[1]);
  out.problem = std::move(parts[2]);
  return out;
}

}  // namespace espy::ingest
