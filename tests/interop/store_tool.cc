// store_tool: a tiny command-line front end to the object store, for the
// interop test with the AWS SDK (tests/interop/s3_sdk_interop.sh). The store
// is opened from the STORE environment variable (any URL open_store takes).
//
//   store_tool put KEY FILE     store FILE's bytes ("-" reads stdin) under KEY
//   store_tool get KEY          write the object's bytes to stdout
//   store_tool list PREFIX      one "KEY SIZE ETAG" line per object, all pages
//
// Exit status: 0 done, 1 store error (message on stderr), 2 get of a missing
// object, 64 usage. Single-threaded.

#include "core/errc.h"
#include "store/object_store.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <string_view>

namespace {

constexpr int kExitStoreError = 1;
constexpr int kExitNotFound = 2;
constexpr int kExitUsage = 64;
// A small page so that listing exercises the continuation tokens.
constexpr std::size_t kListPageKeys = 2;

int usage() {
  std::fputs(
      "usage: STORE=URL store_tool put KEY FILE | get KEY | list PREFIX\n"
      "  put: FILE's bytes ('-' for stdin); get: bytes to stdout; list: \"KEY SIZE ETAG\" lines\n",
      stderr);
  return kExitUsage;
}

int report(std::string_view what, const horizon::Error& e) {
  std::fprintf(stderr, "store_tool: %.*s: %s\n", static_cast<int>(what.size()), what.data(), e.to_string().c_str());
  return kExitStoreError;
}

bool read_input(const std::string& path, std::string& out) {
  if (path == "-") {
    out.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    return !std::cin.bad();
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return false;
  out = std::move(ss).str();
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return usage();
  const std::string_view command = argv[1];
  const char* url = std::getenv("STORE");
  if (url == nullptr || *url == '\0') {
    std::fputs("store_tool: STORE is not set (e.g. STORE=file:///tmp/store)\n", stderr);
    return kExitUsage;
  }
  auto opened = horizon::store::open_store(url);
  if (!opened) return report("open", opened.error());
  horizon::store::ObjectStore& store = **opened;

  if (command == "put" && argc == 4) {
    const std::string key = argv[2];
    std::string bytes;
    if (!read_input(argv[3], bytes)) {
      std::fprintf(stderr, "store_tool: cannot read %s\n", argv[3]);
      return kExitStoreError;
    }
    auto r = store.put(key, bytes);
    if (!r) return report("put " + key, r.error());
    return 0;
  }
  if (command == "get" && argc == 3) {
    const std::string key = argv[2];
    auto r = store.get(key);
    if (!r) return report("get " + key, r.error());
    if (!*r) {
      std::fprintf(stderr, "store_tool: get %s: no such object\n", key.c_str());
      return kExitNotFound;
    }
    const std::string& bytes = **r;
    if (std::fwrite(bytes.data(), 1, bytes.size(), stdout) != bytes.size() || std::fflush(stdout) != 0) {
      std::fputs("store_tool: writing stdout failed\n", stderr);
      return kExitStoreError;
    }
    return 0;
  }
  if (command == "list" && argc == 3) {
    const std::string_view prefix = argv[2];
    std::string token;
    do {
      auto page = store.list(prefix, token, kListPageKeys);
      if (!page) return report("list " + std::string(prefix), page.error());
      for (const auto& o : page->objects) {
        std::printf("%s %llu %s\n", o.key.c_str(), static_cast<unsigned long long>(o.size), o.etag.c_str());
      }
      token = std::move(page->next_token);
    } while (!token.empty());
    return std::fflush(stdout) == 0 ? 0 : kExitStoreError;
  }
  return usage();
}
