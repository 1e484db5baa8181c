// bench/soak/signaling-soak: connect, register, disconnect, 10,000 times, against
// webrtc-call-server on loopback (default flags), sampling the server's threads, fds and RSS
// every --every cycles. Prints first/last/max and the slope per 1,000 cycles, and writes the
// samples as CSV (--csv) for bench/soak/plot.py. Not a test: it judges nothing but prints
// [flat] / [GROWS] next to the figures; it exits 1 only when the run itself went wrong (the
// server did not start or died, a cycle timed out).
//   signaling-soak [--cycles 10000] [--parallel 8] [--every 100] [--names N] [--csv FILE]
//                  [--server PATH | --url ws://HOST:PORT/ws --pid PID] [--timeout 600]
// --url/--pid: a server already running (e.g. under heaptrack) instead of one of its own.
// --names N: the names soak-0 .. soak-(N-1) in turn (N >= --parallel, or names are taken);
// by default every cycle registers a name never used before.
// A cycle: a client connects (the json subprotocol), gets its id, sends `username` with a
// name of its own, waits for the user list that holds that name (registered), then closes
// the WebSocket cleanly and waits for the close to complete. --parallel clients cycle at once.
#include <glib.h>

#include <memory>
#include <string_view>

#include "client.h"
#include "soak-common.h"

#ifndef SOAK_SERVER
#define SOAK_SERVER "build/signaling/webrtc-call-server"
#endif

namespace {

struct Options {
  int cycles = 10000, parallel = 8, every = 100;
  int names = 0;  // distinct names, reused in turn; 0: a new name every cycle
  unsigned timeout_s = 600;
  std::string csv, server = SOAK_SERVER;
  std::string url;  // a server already running (e.g. under heaptrack), with --pid
  pid_t pid = 0;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&] { return soak::flag_value(i, argc, argv); };
    if (a == "--cycles") {
      o.cycles = std::atoi(value().c_str());
    } else if (a == "--parallel") {
      o.parallel = std::max(1, std::atoi(value().c_str()));
    } else if (a == "--every") {
      o.every = std::max(1, std::atoi(value().c_str()));
    } else if (a == "--names") {
      o.names = std::max(0, std::atoi(value().c_str()));
    } else if (a == "--csv") {
      o.csv = value();
    } else if (a == "--url") {
      o.url = value();
    } else if (a == "--pid") {
      o.pid = static_cast<pid_t>(std::atoi(value().c_str()));
    } else if (a == "--server") {
      o.server = value();
    } else if (a == "--timeout") {
      o.timeout_s = static_cast<unsigned>(std::atoi(value().c_str()));
    } else {
      std::fprintf(stderr,
                   "usage: %s [--cycles N] [--parallel N] [--every N] [--names N] [--csv FILE] "
                   "[--server PATH | --url URL --pid PID] [--timeout S]\n",
                   argv[0]);
      std::exit(2);
    }
  }
  return o;
}

// One client slot that runs cycle after cycle.
struct Slot {
  std::unique_ptr<signaling::Client> client;
  std::string name;
  bool registered = false, closed = false, failed = false;
  double started = 0;
};

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  soak::install_limits(o.timeout_s);
  std::unique_ptr<soak::Server> own;
  std::string url = o.url;
  pid_t pid = o.pid;
  if (url.empty()) {
    own = std::make_unique<soak::Server>(o.server);
    url = own->ws_url();
    pid = own->pid();
    if (url.empty()) {
      std::fprintf(stderr, "the server (%s) did not start\n", o.server.c_str());
      return 1;
    }
  } else if (pid <= 0) {
    std::fprintf(stderr, "--url needs --pid (the server's, for its samples)\n");
    return 2;
  }
  std::printf(
      "signaling-soak: %d connect/register/disconnect cycles, %d at a time, against %s "
      "(pid %d, default flags)\n",
      o.cycles, o.parallel, url.c_str(), pid);
  double t0 = soak::now_s();
  std::vector<soak::Sample> samples{soak::sample(pid, t0, 0)};

  int started = 0, done = 0, next_sample = o.every;
  std::vector<Slot> slots(static_cast<std::size_t>(o.parallel));
  auto start = [&](Slot& s) {
    s = Slot{};
    s.name = "soak-" + std::to_string(o.names ? started % o.names : started);
    ++started;
    s.started = soak::now_s();
    Slot* sp = &s;
    s.client = std::make_unique<signaling::Client>(
        signaling::ClientOptions{.uri = url},
        signaling::ClientCallbacks{
            .on_open = {},
            .on_text =
                [sp](std::string_view text) {
                  // Only two messages matter; their shapes are the protocol's (PROTOCOL.md).
                  if (text.find("\"type\":\"id\"") != std::string_view::npos) {
                    auto at = text.find("\"id\":");
                    long id = std::strtol(std::string(text.substr(at + 5)).c_str(), nullptr, 10);
                    sp->client->send(R"({"type":"username","name":")" + sp->name + R"(","id":)" +
                                     std::to_string(id) + "}");
                  } else if (!sp->registered &&
                             text.find("\"type\":\"userlist\"") != std::string_view::npos &&
                             text.find("\"" + sp->name + "\"") != std::string_view::npos) {
                    sp->registered = true;
                    sp->client->close();
                  }
                },
            .on_closed =
                [sp](unsigned short, const std::string&) {
                  sp->closed = true;
                  if (!sp->registered) sp->failed = true;
                }});
    s.client->connect();
  };
  for (Slot& s : slots) {
    if (started < o.cycles) start(s);
  }
  int failures = 0;
  while (done < o.cycles) {
    g_main_context_iteration(nullptr, TRUE);
    for (Slot& s : slots) {
      if (!s.client) continue;
      bool timed_out = soak::now_s() - s.started > 10;
      if (!s.closed && !timed_out) continue;
      if (s.failed || timed_out) {
        std::fprintf(stderr, "cycle of %s %s\n", s.name.c_str(),
                     timed_out ? "timed out (10 s)" : "closed before registering");
        ++failures;
      }
      s.client.reset();
      ++done;
      if (done >= next_sample) {
        samples.push_back(soak::sample(pid, t0, done));
        next_sample += o.every;
      }
      if (started < o.cycles) start(s);
    }
    if (kill(pid, 0) != 0) {
      std::fprintf(stderr, "the server died after %d cycles\n", done);
      return 1;
    }
    if (failures > 10) {
      std::fprintf(stderr, "more than 10 failed cycles: stopping\n");
      return 1;
    }
  }
  double took = soak::now_s() - t0;
  // The server closes its side after ours: give it a moment, then one last sample.
  for (int i = 0; i < 50; ++i) g_main_context_iteration(nullptr, FALSE), usleep(20000);
  soak::Sample after = soak::sample(pid, t0, done);
  std::printf("%d cycles in %.1f s (%.0f cycles/s), %d failed\n", done, took, done / took,
              failures);
  soak::print_series("server", samples);
  std::printf("  1 s after the last cycle: threads %d, fds %d, RSS %ld KiB\n", after.threads,
              after.fds, after.rss_kib);
  // Flat: fds back where they started, RSS within 2 MiB of the first sample after warm-up.
  const soak::Sample& warm = samples.size() > 1 ? samples[1] : samples[0];
  bool fds_flat = after.fds <= samples.front().fds;
  bool rss_flat = after.rss_kib - warm.rss_kib < 2048;
  std::printf("  fds back to %d: %s; RSS within 2 MiB of the first %d cycles' (%ld KiB): %s\n",
              samples.front().fds, fds_flat ? "[flat]" : "[GROWS]", o.every, warm.rss_kib,
              rss_flat ? "[flat]" : "[GROWS]");
  samples.push_back(after);
  if (!soak::write_csv(o.csv, samples)) return 1;
  return failures ? 1 : 0;
}
