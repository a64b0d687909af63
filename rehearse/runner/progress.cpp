// Progress meter for long transfers.
#include "rehearse/runner/progress.hpp"

#include <unistd.h>

#include <iomanip>
#include <sstream>

namespace exbridge::rehearse {

progress_meter::progress_meter(std::string what, std::uint64_t total_items, std::uint64_t total_bytes, std::FILE* out)
    : what_(std::move(what)),
      total_items_(total_items),
      total_bytes_(total_bytes),
      out_(out),
      terminal_(::isatty(::fileno(out)) == 1) {}

progress_meter::~progress_meter() {
  if (drawn_ && terminal_) std::fputs("\r\033[K", out_);
}

std::string progress_meter::line(std::uint64_t items, std::uint64_t bytes) const {
  const double seconds = std::max(1e-3, std::chrono::duration<double>(clock::now() - begin_).count());
  const double rate = static_cast<double>(bytes) / seconds;
  std::ostringstream o;
  o << std::fixed << std::setprecision(1) << "  " << what_ << ": " << items << "/" << total_items_ << " items, "
    << static_cast<double>(bytes) / 1e6 << "/" << static_cast<double>(total_bytes_) / 1e6 << " MB, " << rate / 1e6
    << " MB/s";
  for (const auto& [what, n] : counts_) {
    if (n != 0) o << ", " << n << " " << what;
  }
  if (rate > 0 && total_bytes_ > bytes) {
    const auto eta = static_cast<long long>(static_cast<double>(total_bytes_ - bytes) / rate + 0.5);
    o << ", ETA " << (eta >= 60 ? std::to_string(eta / 60) + " min " : std::string()) << eta % 60 << " s";
  }
  return o.str();
}

void progress_meter::update(std::uint64_t items, std::uint64_t bytes) {
  const auto now = clock::now();
  if (now - begin_ < std::chrono::seconds(2)) return;
  const auto every = terminal_ ? std::chrono::milliseconds(200) : std::chrono::milliseconds(10'000);
  if (drawn_ && now - last_ < every) return;
  last_ = now;
  drawn_ = true;
  const std::string text = line(items, bytes);
  if (terminal_) std::fprintf(out_, "\r\033[K%s", text.c_str());
  else std::fprintf(out_, "%s\n", text.c_str());
  std::fflush(out_);
}

void progress_meter::count(const std::string& what, std::uint64_t delta) {
  for (auto& [name, n] : counts_) {
    if (name == what) {
      n += delta;
      return;
    }
  }
  counts_.emplace_back(what, delta);
}

void progress_meter::advance(std::uint64_t items, std::uint64_t bytes) {
  items_ += items;
  bytes_ += bytes;
  update(items_, bytes_);
}

}  // namespace exbridge::rehearse
