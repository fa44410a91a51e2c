// Merging two sample lists of one series where the newer list wins on equal
// timestamps: how overwrites resolve between head buffers, chunks and blocks.
#pragma once

#include <vector>

#include "model/labels.h"

namespace espy::model {

// Both lists sorted by ts with unique timestamps; so is the result.
inline std::vector<Sample> MergeNewerWins(const std::vector<Sample>& older,
                                          const std::vector<Sample>& newer) {
  if (older.empty()) return newer;
  if (newer.empty()) return older;
  std::vector<Sample> out;
  out.reserve(older.size() + newer.size());
  size_t i = 0, j = 0;
  while (i < older.size() || j < newer.size()) {
    if (j == newer.size() || (i < older.size() && older[i].ts < newer[j].ts)) {
      out.push_back(older[i++]);
    } else {
      if (i < older.size() && older[i].ts == newer[j].ts) ++i;
      out.push_back(newer[j++]);
    }
  }
  return out;
}

// The same into *acc: `newer` merged into it. Appends without copying *acc
// when `newer` starts after it (blocks read in time order do).
inline void MergeNewerWinsInto(std::vector<Sample>* acc, const std::vector<Sample>& newer) {
  if (newer.empty()) return;
  if (acc->empty() || acc->back().ts < newer.front().ts) {
    acc->insert(acc->end(), newer.begin(), newer.end());
    return;
  }
  *acc = MergeNewerWins(*acc, newer);
}

}  // namespace espy::model
