#include "model/labels.h"

#include <algorithm>

#include "base/check.h"

namespace espy::model {

Labels::Labels(std::vector<Label> labels) : items_(std::move(labels)) {
  std::sort(items_.begin(), items_.end(),
            [](const Label& a, const Label& b) { return a.name < b.name; });
  for (size_t i = 1; i < items_.size(); ++i) {
    ESPY_DCHECK(items_[i - 1].name != items_[i].name) << "duplicate label " << items_[i].name;
  }
}

std::string_view Labels::Get(std::string_view name) const {
  auto it = std::lower_bound(items_.begin(), items_.end(), name,
                             [](const Label& l, std::string_view n) { return l.name < n; });
  if (it != items_.end() && it->name == name) return it->value;
  return {};
}

std::string Labels::ToString() const {
  std::string out(MetricName());
  out += '{';
  bool first = true;
  for (const Label& l : items_) {
    if (l.name == kMetricNameLabel) continue;
    if (!first) out += ',';
    first = false;
    out += l.name;
    out += "=\"";
    for (char c : l.value) {
      if (c == '"' || c == '\\') out += '\\';
      if (c == '\n') {
        out += "\\n";
        continue;
      }
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

size_t Labels::ByteSize() const {
  size_t n = sizeof(Labels) + items_.capacity() * sizeof(Label);
  for (const Label& l : items_) {
    if (l.name.size() > 15) n += l.name.capacity();
    if (l.value.size() > 15) n += l.value.capacity();
  }
  return n;
}

}  // namespace espy::model
