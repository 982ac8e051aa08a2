// libFuzzer target for the malloc_info parser: for any bytes, no crash, no read outside the
// input, no undefined behaviour, and never more arenas than the text has <heap> tags.
//
// Built and run by scripts/sanitize.mjs (clang -fsanitize=fuzzer,address,undefined) over the
// corpus in fuzz/corpus/malloc_info/.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "../native/glibc.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The parser reads [data, data + size) only: a copy with no terminator lets ASan see any read
  // past the end.
  std::string text(reinterpret_cast<const char*>(data), size);
  char* exact = static_cast<char*>(std::malloc(size == 0 ? 1 : size));
  if (size > 0) text.copy(exact, size);
  fragstat::Detail detail;
  fragstat::ParseMallocInfo(exact, size, detail);
  size_t heaps = 0;
  for (size_t at = text.find("<heap"); at != std::string::npos; at = text.find("<heap", at + 1)) heaps++;
  if (detail.arenas.size() > heaps) std::abort();
  std::free(exact);
  return 0;
}
