// The live status line of a sweep: runs finished/total, each active run's step/total, loss and
// images/s, and an ETA. On a terminal it is rewritten in place (\r, clear to end of line); when
// stderr is not a terminal (logs, CI) it stays silent and only the event notes are printed.
#pragma once

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ablate {

struct ActiveRunProgress {
  std::string id;
  int64_t step = 0, total_steps = 0;  // 0 total: not reported yet
  double loss = 0, images_per_s = 0;
};

struct SweepProgress {
  int runs_total = 0;
  int runs_finished = 0;           // in a final status (done, failed, diverged)
  int runs_finished_at_start = 0;  // already final when this runner started
  std::vector<ActiveRunProgress> active;
};

// Seconds left, extrapolating the work done since the runner started (finished runs plus the step
// fraction of active ones) at the rate it was done; nullopt until there is progress to go by.
std::optional<double> estimate_eta_s(const SweepProgress& p, double elapsed_s);

// "1h02m", "4m05s", "12s", "3.4s" (tenths below 10 s).
std::string format_duration(double seconds);

// The status line text (not truncated): e.g.
// "[2/6] a1b2c3d4 step 120/400 loss 0.4123 812 img/s | ETA 4m12s".
std::string format_progress(const SweepProgress& p, double elapsed_s);

class ProgressLine {
 public:
  // enabled: draw the live line (normally isatty(stderr)); notes are printed either way.
  ProgressLine(bool enabled, std::FILE* out);
  ~ProgressLine();
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  void update(const SweepProgress& p, double elapsed_s);
  // A permanent line ("run x done in 12 s"): clears the live line, prints, redraws on next update.
  void note(std::string_view line);

  static bool stderr_is_tty();

 private:
  void clear();

  bool enabled_;
  std::FILE* out_;
  bool drawn_ = false;
};

}  // namespace ablate
