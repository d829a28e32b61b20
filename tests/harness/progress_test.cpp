// Sweep progress line: ETA extrapolation checked by hand, duration formatting, the line's content,
// and that a disabled line prints only notes (what logs and CI see).
#include <cstdio>
#include <string>

#include "harness/progress.h"
#include "tests/support/catch.h"

using namespace ablate;

TEST_CASE("progress: ETA extrapolates the work done since the runner started", "[progress]") {
  SweepProgress p;
  p.runs_total = 10;
  p.runs_finished = 4;
  p.runs_finished_at_start = 2;
  p.active = {{"a", 50, 100, 0.5, 10}, {"b", 0, 0, 0, 0}};  // half a run, one not reporting yet
  // Done here: 2 + 0.5 = 2.5 runs in 100 s; left: 10 - 4.5 = 5.5 runs -> 220 s.
  REQUIRE(estimate_eta_s(p, 100.0).has_value());
  CHECK(*estimate_eta_s(p, 100.0) == 220.0);
  p.runs_finished = 2;
  p.active.clear();
  CHECK_FALSE(estimate_eta_s(p, 100.0).has_value());  // nothing done yet: no estimate
}

TEST_CASE("progress: durations and the status line", "[progress]") {
  CHECK(format_duration(3.44) == "3.4s");
  CHECK(format_duration(42) == "42s");
  CHECK(format_duration(245) == "4m05s");
  CHECK(format_duration(3720) == "1h02m");
  SweepProgress p;
  p.runs_total = 6;
  p.runs_finished = 2;
  p.active = {{"a1b2c3d4e5f6", 120, 400, 0.41234, 812.4}, {"ffffeeeeffff", 0, 0, 0, 0}};
  // 2 finished + 0.3 of a run in 23 s since start -> 3.7 runs left take 37 s.
  CHECK(format_progress(p, 23.0) ==
        "[2/6] a1b2c3d4 step 120/400 loss 0.4123 812 img/s | ffffeeee starting | ETA 37s");
}

TEST_CASE("progress: a disabled line prints notes only", "[progress]") {
  std::FILE* f = std::tmpfile();
  REQUIRE(f);
  {
    ProgressLine line(false, f);
    SweepProgress p;
    p.runs_total = 1;
    line.update(p, 1.0);
    line.note("run x done");
  }
  {
    ProgressLine line(true, f);
    SweepProgress p;
    p.runs_total = 1;
    line.update(p, 1.0);  // drawn with \r, cleared before the note
    line.note("run y done");
  }
  std::rewind(f);
  std::string text(256, '\0');
  text.resize(std::fread(text.data(), 1, text.size(), f));
  std::fclose(f);
  CHECK(text == "run x done\n\r[0/1]\x1b[K\r\x1b[Krun y done\n");
}
