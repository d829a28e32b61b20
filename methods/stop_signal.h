// Cooperative stop on SIGTERM / SIGUSR1 (Slurm preemption, time limits, `scontrol requeue`, the
// local runner's Ctrl-C): the handler only sets a flag; the training loop polls it after each
// step, writes a checkpoint and returns, and the worker exits with kRequeueExitCode so the
// scheduler requeues the run, which then resumes from that checkpoint.
#pragma once

namespace ablate {

inline constexpr int kRequeueExitCode = 99;

// Installs the handlers (idempotent). A signal handler can only reach process-wide state, so the
// flag is the one global of the program.
void install_stop_handlers();
// Whether a stop signal arrived since install_stop_handlers().
bool stop_requested();

}  // namespace ablate
