// Sweep status line (see progress.h).
#include "harness/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace ablate {

std::optional<double> estimate_eta_s(const SweepProgress& p, double elapsed_s) {
  if (p.runs_total <= 0) return std::nullopt;
  double work = p.runs_finished;  // in runs
  for (const ActiveRunProgress& a : p.active)
    if (a.total_steps > 0) work += std::clamp(double(a.step) / double(a.total_steps), 0.0, 1.0);
  const double done_here = work - p.runs_finished_at_start;
  const double left = p.runs_total - work;
  if (done_here <= 0 || elapsed_s <= 0) return std::nullopt;
  return std::max(0.0, left) * elapsed_s / done_here;
}

std::string format_duration(double seconds) {
  const int64_t s = std::llround(std::max(0.0, seconds));
  if (s >= 3600) return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
  if (s >= 60) return fmt::format("{}m{:02}s", s / 60, s % 60);
  if (seconds < 10) return fmt::format("{:.1f}s", std::max(0.0, seconds));
  return fmt::format("{}s", s);
}

std::string format_progress(const SweepProgress& p, double elapsed_s) {
  std::string line = fmt::format("[{}/{}]", p.runs_finished, p.runs_total);
  for (size_t i = 0; i < p.active.size(); ++i) {
    const ActiveRunProgress& a = p.active[i];
    line += fmt::format("{} {}", i ? " |" : "", a.id.substr(0, 8));
    if (a.total_steps > 0) {
      line += fmt::format(" step {}/{} loss {:.4g} {:.0f} img/s", a.step, a.total_steps, a.loss,
                          a.images_per_s);
    } else {
      line += " starting";
    }
  }
  if (auto eta = estimate_eta_s(p, elapsed_s)) line += " | ETA " + format_duration(*eta);
  return line;
}

ProgressLine::ProgressLine(bool enabled, std::FILE* out) : enabled_(enabled), out_(out) {}

ProgressLine::~ProgressLine() { clear(); }

bool ProgressLine::stderr_is_tty() { return ::isatty(STDERR_FILENO) == 1; }

void ProgressLine::update(const SweepProgress& p, double elapsed_s) {
  if (!enabled_) return;
  std::string line = format_progress(p, elapsed_s);
  struct winsize ws {};
  size_t width = ::ioctl(::fileno(out_), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ? ws.ws_col : 120;
  if (line.size() >= width) line.resize(width - 1);  // never wrap: \r only returns one row
  std::fprintf(out_, "\r%s\x1b[K", line.c_str());
  std::fflush(out_);
  drawn_ = true;
}

void ProgressLine::note(std::string_view line) {
  clear();
  std::fprintf(out_, "%.*s\n", static_cast<int>(line.size()), line.data());
  std::fflush(out_);
}

void ProgressLine::clear() {
  if (!drawn_) return;
  std::fprintf(out_, "\r\x1b[K");
  std::fflush(out_);
  drawn_ = false;
}

}  // namespace ablate
