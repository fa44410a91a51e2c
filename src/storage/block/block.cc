#include "storage/block/block.h"

#include <algorithm>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "base/fmt_absl.h"
#include "base/status_macros.h"
#include "encoding/coding.h"
#include "encoding/crc32c.h"
#include "fmt/format.h"
#include "fmt/ranges.h"
#include "storage/chunk/chunk.h"
#include "storage/crash_point.h"

namespace espy::storage::block {

namespace {

constexpr std::string_view kChunksMagic = "ESPYCHK1";
constexpr std::string_view kIndexMagic = "ESPYIDX1";
constexpr size_t kWriteBuffer = 1 << 20;

// A file of the block; a missing or unreadable one is DataLoss (the block
// is damaged, and quarantined).
absl::StatusOr<std::string> ReadWholeFile(fs::Env* env, const std::string& path) {
  absl::StatusOr<std::string> data = fs::ReadFile(env, path);
  if (!data.ok()) {
    return absl::DataLossError(fmt::format("{}: cannot read: {}", path, data.status().message()));
  }
  return data;
}

// Splits "key value" lines.
bool ParseU64(std::string_view s, uint64_t* v) {
  return absl::SimpleAtoi(absl::string_view(s.data(), s.size()), v);
}
bool ParseI64(std::string_view s, int64_t* v) {
  return absl::SimpleAtoi(absl::string_view(s.data(), s.size()), v);
}

}  // namespace

std::string BlockMeta::DirName() const { return fmt::format("b-{:016x}", seq); }

uint64_t ParseDirName(std::string_view name) {
  if (name.size() != 18 || name.substr(0, 2) != "b-") return 0;
  uint64_t v = 0;
  for (char c : name.substr(2)) {
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else {
      return 0;
    }
    v = v * 16 + static_cast<uint64_t>(d);
  }
  return v;
}

std::string EncodeMeta(const BlockMeta& m) {
  std::string body = fmt::format(
      "version 1\nseq {}\nmint {}\nmaxt {}\nlevel {}\nseries {}\nchunks {}\nsamples {}\n"
      "chunks_bytes {}\nchunks_crc32c {}\nindex_bytes {}\nindex_crc32c {}\n",
      m.seq, m.mint, m.maxt, m.level, m.num_series, m.num_chunks, m.num_samples, m.chunks_bytes,
      m.chunks_crc, m.index_bytes, m.index_crc);
  if (m.wal_segment != 0) body += fmt::format("wal_segment {}\n", m.wal_segment);
  if (m.resolution != 0) {
    body += fmt::format("resolution {}\nsources {}\n", m.resolution, fmt::join(m.sources, ","));
  }
  body += fmt::format("crc32c {}\n", encoding::crc32c::Value(body));
  return body;
}

absl::StatusOr<BlockMeta> DecodeMeta(std::string_view text) {
  size_t crc_at = text.rfind("crc32c ");
  if (crc_at == std::string_view::npos || (crc_at > 0 && text[crc_at - 1] != '\n')) {
    return absl::DataLossError("meta: no crc32c line");
  }
  std::string_view crc_text = text.substr(crc_at + 7);
  if (!crc_text.empty() && crc_text.back() == '\n') crc_text.remove_suffix(1);
  uint64_t want = 0;
  if (!ParseU64(crc_text, &want)) return absl::DataLossError("meta: bad crc32c line");
  if (encoding::crc32c::Value(text.substr(0, crc_at)) != want) {
    return absl::DataLossError("meta: checksum mismatch");
  }
  BlockMeta m;
  std::map<std::string, std::string, std::less<>> kv;
  std::string_view rest = text.substr(0, crc_at);
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    size_t sp = line.find(' ');
    if (sp == std::string_view::npos)
      return absl::DataLossError(fmt::format("meta: bad line '{}'", line));
    kv.emplace(std::string(line.substr(0, sp)), std::string(line.substr(sp + 1)));
  }
  auto get_u = [&](std::string_view key, uint64_t* v) -> absl::Status {
    auto it = kv.find(key);
    if (it == kv.end() || !ParseU64(it->second, v)) {
      return absl::DataLossError(fmt::format("meta: missing or bad '{}'", key));
    }
    return absl::OkStatus();
  };
  auto get_i = [&](std::string_view key, int64_t* v) -> absl::Status {
    auto it = kv.find(key);
    if (it == kv.end() || !ParseI64(it->second, v)) {
      return absl::DataLossError(fmt::format("meta: missing or bad '{}'", key));
    }
    return absl::OkStatus();
  };
  uint64_t version = 0, level = 0, ccrc = 0, icrc = 0;
  ESPY_RETURN_IF_ERROR(get_u("version", &version));
  if (version != 1) return absl::DataLossError(fmt::format("meta: unknown version {}", version));
  ESPY_RETURN_IF_ERROR(get_u("seq", &m.seq));
  ESPY_RETURN_IF_ERROR(get_i("mint", &m.mint));
  ESPY_RETURN_IF_ERROR(get_i("maxt", &m.maxt));
  ESPY_RETURN_IF_ERROR(get_u("level", &level));
  ESPY_RETURN_IF_ERROR(get_u("series", &m.num_series));
  ESPY_RETURN_IF_ERROR(get_u("chunks", &m.num_chunks));
  ESPY_RETURN_IF_ERROR(get_u("samples", &m.num_samples));
  ESPY_RETURN_IF_ERROR(get_u("chunks_bytes", &m.chunks_bytes));
  ESPY_RETURN_IF_ERROR(get_u("chunks_crc32c", &ccrc));
  ESPY_RETURN_IF_ERROR(get_u("index_bytes", &m.index_bytes));
  ESPY_RETURN_IF_ERROR(get_u("index_crc32c", &icrc));
  if (kv.contains("wal_segment")) ESPY_RETURN_IF_ERROR(get_u("wal_segment", &m.wal_segment));
  if (kv.contains("resolution")) {
    ESPY_RETURN_IF_ERROR(get_i("resolution", &m.resolution));
    auto it = kv.find("sources");
    if (it == kv.end()) return absl::DataLossError("meta: missing or bad 'sources'");
    for (absl::string_view part : absl::StrSplit(it->second, ',', absl::SkipEmpty())) {
      uint64_t seq = 0;
      if (!ParseU64(std::string_view(part.data(), part.size()), &seq)) {
        return absl::DataLossError("meta: missing or bad 'sources'");
      }
      m.sources.push_back(seq);
    }
  }
  m.level = static_cast<int>(level);
  m.chunks_crc = static_cast<uint32_t>(ccrc);
  m.index_crc = static_cast<uint32_t>(icrc);
  return m;
}

// ---- BlockWriter ----

BlockWriter::BlockWriter(fs::Env* env, std::string parent, uint64_t seq, int level)
    : env_(env), parent_(std::move(parent)) {
  meta_.seq = seq;
  meta_.level = level;
  meta_.mint = INT64_MAX;
  meta_.maxt = INT64_MIN;
  tmp_dir_ = parent_ + "/" + meta_.DirName() + ".tmp";
}

BlockWriter::~BlockWriter() {
  chunks_file_.reset();
  // Best effort: a leftover ".tmp" dir is removed by the next Create or Open.
  if (!finished_) (void)env_->RemoveTree(tmp_dir_);
}

absl::StatusOr<std::unique_ptr<BlockWriter>> BlockWriter::Create(fs::Env* env, std::string parent,
                                                                 uint64_t seq, int level) {
  std::unique_ptr<BlockWriter> w(new BlockWriter(env, std::move(parent), seq, level));
  ESPY_RETURN_IF_ERROR(env->RemoveTree(w->tmp_dir_));
  ESPY_RETURN_IF_ERROR(fs::CreateDirs(env, w->parent_));
  ESPY_RETURN_IF_ERROR(env->CreateDir(w->tmp_dir_));
  ESPY_ASSIGN_OR_RETURN(w->chunks_file_,
                        env->NewWritableFile(w->tmp_dir_ + "/chunks", fs::OpenMode::kTruncate));
  w->buffer_.append(kChunksMagic);
  w->chunks_crc_ = encoding::crc32c::Value(kChunksMagic);
  w->chunks_offset_ = kChunksMagic.size();
  return w;
}

absl::Status BlockWriter::Write(const char* data, size_t n) {
  return chunks_file_->Append(std::string_view(data, n));
}

absl::Status BlockWriter::AddSeries(const model::Labels& labels,
                                    const std::vector<std::string_view>& chunks) {
  if (chunks.empty()) return absl::OkStatus();
  std::vector<ChunkRef> refs;
  refs.reserve(chunks.size());
  for (std::string_view c : chunks) {
    ESPY_ASSIGN_OR_RETURN(chunk::ChunkHeader h, chunk::ReadChunkHeader(c));
    if (h.num_samples == 0) continue;
    if (!refs.empty() && h.min_time <= refs.back().maxt) {
      return absl::InvalidArgumentError(fmt::format(
          "block {}: series {}: chunk starting at {} overlaps the previous one ending at {}",
          tmp_dir_, labels.ToString(), h.min_time, refs.back().maxt));
    }
    refs.push_back({h.min_time, h.max_time, chunks_offset_, static_cast<uint32_t>(c.size())});
    buffer_.append(c);
    chunks_crc_ = encoding::crc32c::Extend(chunks_crc_, c.data(), c.size());
    chunks_offset_ += c.size();
    meta_.num_samples += h.num_samples;
    meta_.mint = std::min(meta_.mint, h.min_time);
    meta_.maxt = std::max(meta_.maxt, h.max_time);
    if (buffer_.size() >= kWriteBuffer) {
      ESPY_RETURN_IF_ERROR(Write(buffer_.data(), buffer_.size()));
      buffer_.clear();
    }
  }
  if (refs.empty()) return absl::OkStatus();
  meta_.num_chunks += refs.size();
  series_.push_back(labels);
  chunk_refs_.push_back(std::move(refs));
  return absl::OkStatus();
}

absl::StatusOr<BlockMeta> BlockWriter::Finish() {
  if (series_.empty()) return absl::NotFoundError("empty block: nothing to write");
  ESPY_RETURN_IF_ERROR(Write(buffer_.data(), buffer_.size()));
  buffer_.clear();
  buffer_.shrink_to_fit();
  ESPY_RETURN_IF_ERROR(chunks_file_->DataSync());
  ESPY_RETURN_IF_ERROR(chunks_file_->Close());
  chunks_file_.reset();
  meta_.chunks_bytes = chunks_offset_;
  meta_.chunks_crc = chunks_crc_;
  meta_.num_series = series_.size();

  // Symbols: every label name and value, sorted; labels refer to them by index.
  std::vector<std::string_view> symbols;
  for (const model::Labels& ls : series_) {
    for (const model::Label& l : ls.items()) {
      symbols.push_back(l.name);
      symbols.push_back(l.value);
    }
  }
  std::sort(symbols.begin(), symbols.end());
  symbols.erase(std::unique(symbols.begin(), symbols.end()), symbols.end());
  auto sym = [&](std::string_view s) {
    return static_cast<uint64_t>(std::lower_bound(symbols.begin(), symbols.end(), s) -
                                 symbols.begin());
  };
  std::string index(kIndexMagic);
  encoding::PutVarint64(&index, symbols.size());
  for (std::string_view s : symbols) encoding::PutLengthPrefixed(&index, s);

  std::map<std::pair<uint64_t, uint64_t>, std::vector<uint32_t>> postings;
  encoding::PutVarint64(&index, series_.size());
  for (size_t i = 0; i < series_.size(); ++i) {
    const auto& items = series_[i].items();
    encoding::PutVarint64(&index, items.size());
    for (const model::Label& l : items) {
      uint64_t n = sym(l.name), v = sym(l.value);
      encoding::PutVarint64(&index, n);
      encoding::PutVarint64(&index, v);
      postings[{n, v}].push_back(static_cast<uint32_t>(i));
    }
    const std::vector<ChunkRef>& refs = chunk_refs_[i];
    encoding::PutVarint64(&index, refs.size());
    for (const ChunkRef& c : refs) {
      encoding::PutVarsint64(&index, c.mint);
      encoding::PutVarint64(&index, static_cast<uint64_t>(c.maxt - c.mint));
      encoding::PutVarint64(&index, c.offset);
      encoding::PutVarint64(&index, c.length);
    }
  }
  encoding::PutVarint64(&index, postings.size());
  for (const auto& [key, ids] : postings) {
    encoding::PutVarint64(&index, key.first);
    encoding::PutVarint64(&index, key.second);
    encoding::PutVarint64(&index, ids.size());
    uint32_t prev = 0;
    for (uint32_t id : ids) {
      encoding::PutVarint64(&index, id - prev);
      prev = id;
    }
  }
  encoding::PutFixed32(&index, encoding::crc32c::Value(index));
  meta_.index_bytes = index.size();
  meta_.index_crc = encoding::crc32c::Value(index);
  ESPY_RETURN_IF_ERROR(fs::WriteFileSynced(env_, tmp_dir_ + "/index", index));
  ESPY_RETURN_IF_ERROR(fs::WriteFileSynced(env_, tmp_dir_ + "/meta", EncodeMeta(meta_)));
  ESPY_RETURN_IF_ERROR(env_->SyncDir(tmp_dir_));
  CrashPoint("block_write_before_rename");
  std::string final_dir = parent_ + "/" + meta_.DirName();
  ESPY_RETURN_IF_ERROR(env_->Rename(tmp_dir_, final_dir));
  finished_ = true;
  ESPY_RETURN_IF_ERROR(env_->SyncDir(parent_));
  CrashPoint("block_write_after_rename");
  return meta_;
}

// ---- Block ----

Block::~Block() = default;

absl::StatusOr<std::shared_ptr<Block>> Block::Open(fs::Env* env, const std::string& dir) {
  std::shared_ptr<Block> b(new Block());
  b->env_ = env;
  b->dir_ = dir;
  absl::StatusOr<std::string> meta_text = ReadWholeFile(env, dir + "/meta");
  if (!meta_text.ok())
    return absl::DataLossError(fmt::format("block {}: {}", dir, meta_text.status().message()));
  absl::StatusOr<BlockMeta> meta = DecodeMeta(*meta_text);
  if (!meta.ok())
    return absl::DataLossError(fmt::format("block {}: {}", dir, meta.status().message()));
  b->meta_ = *meta;

  absl::StatusOr<std::string> index = ReadWholeFile(env, dir + "/index");
  if (!index.ok())
    return absl::DataLossError(fmt::format("block {}: {}", dir, index.status().message()));
  if (index->size() != b->meta_.index_bytes ||
      encoding::crc32c::Value(*index) != b->meta_.index_crc) {
    return absl::DataLossError(
        fmt::format("block {}: index: size {} or checksum differs from meta (size {})", dir,
                    index->size(), b->meta_.index_bytes));
  }

  absl::StatusOr<std::unique_ptr<fs::MappedRegion>> chunks = env->MapFile(dir + "/chunks");
  if (!chunks.ok()) {
    return absl::DataLossError(
        fmt::format("block {}: chunks: cannot open: {}", dir, chunks.status().message()));
  }
  if ((*chunks)->size() != b->meta_.chunks_bytes || (*chunks)->size() < kChunksMagic.size()) {
    return absl::DataLossError(fmt::format("block {}: chunks: size {}, meta says {}", dir,
                                           (*chunks)->size(), b->meta_.chunks_bytes));
  }
  b->chunks_map_ = *std::move(chunks);
  b->data_ = b->chunks_map_->data();
  b->data_size_ = b->chunks_map_->size();
  std::string_view data(b->data_, b->data_size_);
  if (data.substr(0, kChunksMagic.size()) != kChunksMagic ||
      encoding::crc32c::Value(data) != b->meta_.chunks_crc) {
    return absl::DataLossError(fmt::format("block {}: chunks: checksum mismatch", dir));
  }
  if (absl::Status s = b->ParseIndex(*index); !s.ok()) {
    return absl::DataLossError(fmt::format("block {}: index: {}", dir, s.message()));
  }
  // A crash while replacing the tombstones left this; the old file stands.
  const std::string tomb_tmp = fmt::format("{}/{}.tmp", dir, kTombstonesFile);
  if (fs::Exists(env, tomb_tmp)) ESPY_RETURN_IF_ERROR(env->RemoveFile(tomb_tmp));
  std::string tomb_path = fmt::format("{}/{}", dir, kTombstonesFile);
  auto tombstones = std::make_shared<Tombstones>();
  if (fs::Exists(env, tomb_path)) {
    absl::StatusOr<std::string> text = ReadWholeFile(env, tomb_path);
    if (!text.ok())
      return absl::DataLossError(fmt::format("block {}: {}", dir, text.status().message()));
    absl::StatusOr<Tombstones> t = DecodeTombstones(*text, b->num_series());
    if (!t.ok()) return absl::DataLossError(fmt::format("block {}: {}", dir, t.status().message()));
    *tombstones = *std::move(t);
  }
  {
    absl::MutexLock lock(&b->tomb_mu_);
    b->tombstones_ = std::move(tombstones);
  }
  return b;
}

absl::Status Block::ParseIndex(std::string_view in) {
  if (in.substr(0, kIndexMagic.size()) != kIndexMagic) return absl::DataLossError("bad magic");
  const size_t total = in.size();
  in.remove_prefix(kIndexMagic.size());
  in.remove_suffix(4);  // CRC, checked against the meta already
  auto bad = [&](std::string_view what) {
    return absl::DataLossError(fmt::format("{} at offset {}", what, total - 4 - in.size()));
  };
  uint64_t n = 0;
  if (!encoding::GetVarint64(&in, &n) || n > in.size()) return bad("bad symbol count");
  symbols_.reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    std::string_view s;
    if (!encoding::GetLengthPrefixed(&in, &s)) return bad("truncated symbol");
    symbols_.emplace_back(s);
  }
  auto get_sym = [&](uint64_t* id) {
    return encoding::GetVarint64(&in, id) && *id < symbols_.size();
  };
  if (!encoding::GetVarint64(&in, &n) || n > in.size() || n != meta_.num_series)
    return bad("bad series count");
  labels_.reserve(n);
  chunk_begin_.reserve(n + 1);
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t nl = 0;
    if (!encoding::GetVarint64(&in, &nl) || nl > in.size()) return bad("bad label count");
    std::vector<model::Label> items;
    items.reserve(nl);
    for (uint64_t j = 0; j < nl; ++j) {
      uint64_t name = 0, value = 0;
      if (!get_sym(&name) || !get_sym(&value)) return bad("bad label symbol");
      items.push_back({symbols_[name], symbols_[value]});
    }
    labels_.emplace_back(std::move(items));
    uint64_t nc = 0;
    if (!encoding::GetVarint64(&in, &nc) || nc > in.size()) return bad("bad chunk count");
    chunk_begin_.push_back(static_cast<uint32_t>(chunks_.size()));
    for (uint64_t j = 0; j < nc; ++j) {
      int64_t mint = 0;
      uint64_t span = 0, off = 0, len = 0;
      if (!encoding::GetVarsint64(&in, &mint) || !encoding::GetVarint64(&in, &span) ||
          !encoding::GetVarint64(&in, &off) || !encoding::GetVarint64(&in, &len)) {
        return bad("truncated chunk ref");
      }
      if (off < kChunksMagic.size() || off > data_size_ || len > data_size_ - off) {
        return bad(fmt::format("chunk ref [{}, +{}) outside the chunks file", off, len));
      }
      chunks_.push_back({mint, mint + static_cast<int64_t>(span), off, static_cast<uint32_t>(len)});
    }
  }
  chunk_begin_.push_back(static_cast<uint32_t>(chunks_.size()));
  if (!encoding::GetVarint64(&in, &n) || n > in.size()) return bad("bad postings count");
  postings_.reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t name = 0, value = 0, count = 0;
    if (!get_sym(&name) || !get_sym(&value) || !encoding::GetVarint64(&in, &count) ||
        count > in.size()) {
      return bad("bad postings entry");
    }
    PostingsEntry e{static_cast<uint32_t>(name), static_cast<uint32_t>(value), {}};
    e.ids.reserve(count);
    uint64_t id = 0;
    for (uint64_t j = 0; j < count; ++j) {
      uint64_t d = 0;
      if (!encoding::GetVarint64(&in, &d)) return bad("truncated postings");
      id += d;
      if (id >= labels_.size()) return bad("postings refer to a missing series");
      e.ids.push_back(static_cast<uint32_t>(id));
    }
    postings_.push_back(std::move(e));
  }
  if (!in.empty()) return bad("trailing bytes");
  return absl::OkStatus();
}

std::shared_ptr<const Tombstones> Block::tombstones() const {
  absl::MutexLock lock(&tomb_mu_);
  return tombstones_;
}

absl::Status Block::AddTombstones(const Tombstones& add) const {
  absl::MutexLock write_lock(&write_mu_);
  auto next = std::make_shared<Tombstones>(*tombstones());
  for (const auto& [id, ivs] : add) {
    if (id >= num_series()) {
      return absl::InvalidArgumentError(
          fmt::format("block {}: tombstone for series id {} of {}", dir_, id, num_series()));
    }
    if (!ivs.empty()) (*next)[id].AddAll(ivs);
  }
  ESPY_RETURN_IF_ERROR(WriteTombstonesFile(env_, dir_, *next));
  absl::MutexLock lock(&tomb_mu_);
  tombstones_ = std::move(next);
  return absl::OkStatus();
}

absl::Status Block::Read(uint32_t id, int64_t mint, int64_t maxt,
                         std::vector<model::Sample>* out) const {
  std::vector<int64_t> ts;
  std::vector<double> vs;
  const std::shared_ptr<const Tombstones> tombstones = this->tombstones();
  auto t = tombstones->find(id);
  const Intervals* deleted = t == tombstones->end() ? nullptr : &t->second;
  for (const ChunkRef& c : Chunks(id)) {
    if (c.maxt < mint || c.mint > maxt) continue;
    if (deleted != nullptr && deleted->Covers(c.mint, c.maxt)) continue;
    ts.clear();
    vs.clear();
    absl::Status s = chunk::DecodeChunkRange(ChunkBytes(c), mint, maxt, &ts, &vs);
    if (!s.ok()) {
      return absl::DataLossError(
          fmt::format("block {}: chunk at offset {}: {}", dir_, c.offset, s.message()));
    }
    for (size_t i = 0; i < ts.size(); ++i) {
      if (deleted != nullptr && deleted->Contains(ts[i])) continue;
      out->push_back({ts[i], vs[i]});
    }
  }
  return absl::OkStatus();
}

std::vector<uint32_t> Block::Postings(std::string_view name, std::string_view value) const {
  auto find = [&](std::string_view s) -> int64_t {
    auto it = std::lower_bound(symbols_.begin(), symbols_.end(), s);
    return it != symbols_.end() && *it == s ? it - symbols_.begin() : -1;
  };
  int64_t n = find(name), v = find(value);
  if (n < 0 || v < 0) return {};
  auto it = std::lower_bound(postings_.begin(), postings_.end(), std::pair<int64_t, int64_t>(n, v),
                             [](const PostingsEntry& e, const std::pair<int64_t, int64_t>& k) {
                               return std::pair<int64_t, int64_t>(e.name, e.value) < k;
                             });
  if (it == postings_.end() || it->name != n || it->value != v) return {};
  return it->ids;
}

}  // namespace espy::storage::block
