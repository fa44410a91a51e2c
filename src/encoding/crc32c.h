// CRC-32C (Castagnoli), the checksum of every on-disk record. Uses the SSE4.2
// crc32 instruction when the CPU has it, a table otherwise.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace espy::encoding::crc32c {

// The CRC of data[0, n) continued from the CRC `init` of earlier bytes.
uint32_t Extend(uint32_t init, const char* data, size_t n);

inline uint32_t Value(std::string_view data) { return Extend(0, data.data(), data.size()); }

}  // namespace espy::encoding::crc32c
