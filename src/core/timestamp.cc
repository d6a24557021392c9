#include "core/timestamp.h"

#include "core/text.h"

#include <chrono>
#include <fmt/format.h>

namespace horizon {
namespace {

constexpr std::int64_t kMsPerDay = 86'400'000;
// 0000-01-01 and 9999-12-31 23:59:59.999 in unix milliseconds.
constexpr std::int64_t kMinMs = -62'167'219'200'000;
constexpr std::int64_t kMaxMs = 253'402'300'799'999;

Error bad(std::string_view text, std::string_view what) {
  return Error::make(errc::invalid_meta,
                     fmt::format("invalid timestamp \"{}\": {} (expected YYYY-MM-DDTHH:MM:SS.mmmZ)",
                                 printable_excerpt(text, 40), what));
}

}  // namespace

Timestamp Timestamp::now() {
  using namespace std::chrono;
  return Timestamp{duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count()};
}

Result<Timestamp> Timestamp::parse(std::string_view text) {
  // Positions of the fixed separators in "YYYY-MM-DDTHH:MM:SS.mmmZ".
  if (text.size() != 24) return bad(text, "wrong length");
  constexpr std::string_view kShape = "dddd-dd-ddTdd:dd:dd.dddZ";
  for (std::size_t i = 0; i < kShape.size(); ++i) {
    const char want = kShape[i];
    const char c = text[i];
    if (want == 'd' ? (c < '0' || c > '9') : c != want) return bad(text, fmt::format("unexpected byte at {}", i));
  }
  auto num = [&](std::size_t pos, std::size_t len) {
    int v = 0;
    for (std::size_t i = pos; i < pos + len; ++i) v = v * 10 + (text[i] - '0');
    return v;
  };
  using namespace std::chrono;
  const year_month_day ymd{year{num(0, 4)}, month{static_cast<unsigned>(num(5, 2))},
                           day{static_cast<unsigned>(num(8, 2))}};
  if (!ymd.ok()) return bad(text, "not a calendar date");
  const int hh = num(11, 2), mm = num(14, 2), ss = num(17, 2), ms = num(20, 3);
  if (hh > 23 || mm > 59 || ss > 59) return bad(text, "time of day out of range");
  const std::int64_t days = sys_days(ymd).time_since_epoch().count();
  return Timestamp{days * kMsPerDay + ((hh * 60 + mm) * 60 + ss) * 1000 + ms};
}

std::string Timestamp::to_string() const {
  using namespace std::chrono;
  const std::int64_t t = std::clamp(unix_ms, kMinMs, kMaxMs);
  std::int64_t days = t / kMsPerDay;
  std::int64_t rem = t % kMsPerDay;
  if (rem < 0) {
    rem += kMsPerDay;
    --days;
  }
  const year_month_day ymd{sys_days{std::chrono::days{days}}};
  const auto ms_of_day = static_cast<int>(rem);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                     ms_of_day / 3'600'000, ms_of_day / 60'000 % 60, ms_of_day / 1000 % 60, ms_of_day % 1000);
}

}  // namespace horizon
