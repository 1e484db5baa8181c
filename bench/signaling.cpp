// bench/signaling: a load generator for webrtc-call-server that prints figures.
//
// It is not a test: it asserts nothing about time. It spawns a fresh server per phase,
// drives it over loopback with its own minimal WebSocket client (epoll, non-blocking
// sockets, one thread, no libsoup, no JSON library) so that the server, not the generator,
// is what gets measured, and prints one block of figures per phase:
//   a  N clients connect and register at once: time until every client holds all N names
//   b  N registered users relay messages in pairs: max throughput, then latency at half of it,
//      then latency at fixed lower rates (250, 500, 1k, 2k, 5k, ... msg/s)
//   c  server RSS per idle registered connection (10,000 connections)
// Every wait has a deadline; the server is stopped (SIGTERM, then SIGKILL) on every path,
// and dies with us (PR_SET_PDEATHSIG) if we are killed.
//
//   signaling --server PATH [--phase a|b|c|all] [--clients 1000] [--idle 10000]
//             [--duration 5] [--window 4] [--rate N] [--no-sweep] [--timeout 60]
//             [--no-io-uring]
//             [--connect-concurrency 500] [--subprotocol json|none|mixed]
//             [--server-log PREFIX|none]
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cinttypes>
#include <climits>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

// With liburing, the generator batches its system calls (one io_uring_enter for all the
// sends of a loop turn, one for all the reads): on machines where a system call is expensive
// it would otherwise spend more CPU per message than the server it measures.
#if __has_include(<liburing.h>)
#include <liburing.h>
#define BENCH_URING 1
#else
#define BENCH_URING 0
#endif

namespace {

using Ns = std::int64_t;
constexpr Ns kMs = 1'000'000;
constexpr Ns kS = 1'000'000'000;
constexpr Ns kNever = INT64_MAX;
// Waits shorter than this are spent polling (see Loop::run).
constexpr Ns kSpinNs = 50'000;

Ns now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<Ns>(ts.tv_sec) * kS + ts.tv_nsec;
}

void sleep_ns(Ns d) {
  if (d <= 0) return;
  timespec ts{static_cast<time_t>(d / kS), static_cast<long>(d % kS)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

double secs(Ns d) {
  return static_cast<double>(d) / 1e9;
}
double ms(Ns d) {
  return static_cast<double>(d) / 1e6;
}

// The server being measured: killed from the signal handlers if we are interrupted.
volatile sig_atomic_t g_server_pid = 0;

void on_fatal_signal(int sig) {
  if (g_server_pid > 0) kill(static_cast<pid_t>(g_server_pid), SIGKILL);
  static const char msg[] =
      "\nsignaling bench: interrupted (or hard time limit hit); server killed\n";
  ssize_t ignored = write(2, msg, sizeof msg - 1);
  (void)ignored;
  signal(sig, SIG_DFL);
  raise(sig);
}

// ---------------------------------------------------------------------------------------
// Small utilities: SHA-1 and base64 (for Sec-WebSocket-Accept), a fast PRNG for keys/masks.

std::array<std::uint8_t, 20> sha1(std::string_view msg) {
  std::uint32_t h[5] = {0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u, 0xC3D2E1F0u};
  std::string m(msg);
  const std::uint64_t bits = static_cast<std::uint64_t>(msg.size()) * 8;
  m.push_back(static_cast<char>(0x80));
  while (m.size() % 64 != 56) m.push_back('\0');
  for (int i = 7; i >= 0; --i) m.push_back(static_cast<char>((bits >> (i * 8)) & 0xff));
  auto rol = [](std::uint32_t x, int n) { return (x << n) | (x >> (32 - n)); };
  for (std::size_t off = 0; off < m.size(); off += 64) {
    std::uint32_t w[80];
    for (int i = 0; i < 16; ++i) {
      const auto* b = reinterpret_cast<const unsigned char*>(m.data() + off + 4 * i);
      w[i] = (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) |
             (std::uint32_t{b[2]} << 8) | std::uint32_t{b[3]};
    }
    for (int i = 16; i < 80; ++i) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    std::uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; ++i) {
      std::uint32_t f, k;
      if (i < 20) {
        f = (b & c) | (~b & d);
        k = 0x5A827999u;
      } else if (i < 40) {
        f = b ^ c ^ d;
        k = 0x6ED9EBA1u;
      } else if (i < 60) {
        f = (b & c) | (b & d) | (c & d);
        k = 0x8F1BBCDCu;
      } else {
        f = b ^ c ^ d;
        k = 0xCA62C1D6u;
      }
      std::uint32_t t = rol(a, 5) + f + e + k + w[i];
      e = d;
      d = c;
      c = rol(b, 30);
      b = a;
      a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
  }
  std::array<std::uint8_t, 20> out;
  for (int i = 0; i < 5; ++i) {
    for (int j = 0; j < 4; ++j) out[4 * i + j] = static_cast<std::uint8_t>(h[i] >> (24 - 8 * j));
  }
  return out;
}

std::string base64(const std::uint8_t* p, std::size_t n) {
  static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (std::size_t i = 0; i < n; i += 3) {
    std::uint32_t v = std::uint32_t{p[i]} << 16;
    if (i + 1 < n) v |= std::uint32_t{p[i + 1]} << 8;
    if (i + 2 < n) v |= p[i + 2];
    out.push_back(tbl[(v >> 18) & 63]);
    out.push_back(tbl[(v >> 12) & 63]);
    out.push_back(i + 1 < n ? tbl[(v >> 6) & 63] : '=');
    out.push_back(i + 2 < n ? tbl[v & 63] : '=');
  }
  return out;
}

struct Rng {
  std::uint64_t s;
  Rng() {
    if (getrandom(&s, sizeof s, 0) != static_cast<ssize_t>(sizeof s)) {
      s = static_cast<std::uint64_t>(now_ns()) ^ static_cast<std::uint64_t>(getpid());
    }
    if (s == 0) s = 0x9E3779B97F4A7C15ull;
  }
  std::uint64_t next() {  // xorshift64*
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545F4914F6CDD1Dull;
  }
};

// ---------------------------------------------------------------------------------------
// Minimal JSON scanning: the top-level members of an object, values as raw text spans.

constexpr std::size_t kBad = std::string_view::npos;

std::size_t skip_ws(std::string_view s, std::size_t i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  return i;
}

std::size_t skip_string(std::string_view s, std::size_t i) {  // s[i] == '"'
  for (++i; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;
    } else if (s[i] == '"') {
      return i + 1;
    }
  }
  return kBad;
}

std::size_t skip_value(std::string_view s, std::size_t i) {
  if (i >= s.size()) return kBad;
  if (s[i] == '"') return skip_string(s, i);
  if (s[i] == '{' || s[i] == '[') {
    int depth = 0;
    while (i < s.size()) {
      char x = s[i];
      if (x == '"') {
        i = skip_string(s, i);
        if (i == kBad) return kBad;
        continue;
      }
      if (x == '{' || x == '[') {
        ++depth;
      } else if ((x == '}' || x == ']') && --depth == 0) {
        return i + 1;
      }
      ++i;
    }
    return kBad;
  }
  std::size_t start = i;
  while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\n' &&
         s[i] != '\r' && s[i] != '\t') {
    ++i;
  }
  return i == start ? kBad : i;
}

template <class F>
void for_each_member(std::string_view s, F&& f) {
  std::size_t i = skip_ws(s, 0);
  if (i >= s.size() || s[i] != '{') return;
  i = skip_ws(s, i + 1);
  while (i < s.size() && s[i] == '"') {
    std::size_t key_end = skip_string(s, i);
    if (key_end == kBad) return;
    std::string_view key = s.substr(i + 1, key_end - i - 2);
    i = skip_ws(s, key_end);
    if (i >= s.size() || s[i] != ':') return;
    i = skip_ws(s, i + 1);
    std::size_t value_end = skip_value(s, i);
    if (value_end == kBad) return;
    f(key, s.substr(i, value_end - i));
    i = skip_ws(s, value_end);
    if (i >= s.size() || s[i] != ',') return;
    i = skip_ws(s, i + 1);
  }
}

std::string_view json_str(std::string_view v) {
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') return v.substr(1, v.size() - 2);
  return {};
}

std::int64_t json_int(std::string_view v) {
  std::int64_t x = -1;
  std::from_chars(v.data(), v.data() + v.size(), x);
  return x;
}

long json_array_size(std::string_view v) {
  if (v.empty() || v[0] != '[') return -1;
  std::size_t i = skip_ws(v, 1);
  if (i < v.size() && v[i] == ']') return 0;
  long n = 0;
  while (i < v.size()) {
    i = skip_value(v, i);
    if (i == kBad) return -1;
    ++n;
    i = skip_ws(v, i);
    if (i < v.size() && v[i] == ',') {
      i = skip_ws(v, i + 1);
    } else if (i < v.size() && v[i] == ']') {
      return n;
    } else {
      return -1;
    }
  }
  return -1;
}

// ---------------------------------------------------------------------------------------
// /proc readers.

long proc_status_kib(pid_t pid, const char* field) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/status", static_cast<int>(pid));
  FILE* f = std::fopen(path, "r");
  if (!f) return -1;
  char line[256];
  long v = -1;
  std::size_t flen = std::strlen(field);
  while (std::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, field, flen) == 0) {
      v = std::strtol(line + flen, nullptr, 10);
      break;
    }
  }
  std::fclose(f);
  return v;
}

double proc_cpu_s(pid_t pid) {  // utime + stime
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  FILE* f = std::fopen(path, "r");
  if (!f) return -1;
  char buf[1024];
  std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  char* p = std::strrchr(buf, ')');
  if (!p) return -1;
  // Fields after the command: 3 state, ..., 14 utime, 15 stime.
  unsigned long long utime = 0, stime = 0;
  int field = 2;
  for (char* tok = std::strtok(p + 1, " "); tok; tok = std::strtok(nullptr, " ")) {
    ++field;
    if (field == 14) utime = std::strtoull(tok, nullptr, 10);
    if (field == 15) {
      stime = std::strtoull(tok, nullptr, 10);
      break;
    }
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double self_cpu_s() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// CPU use over a measurement window: the server's, ours, and the whole machine's (the
// machine may be shared: what others use is printed so that figures can be judged).
struct CpuSnap {
  Ns t = 0;
  double server = 0, bench = 0;
  double machine_busy = 0, machine_total = 0;  // clock ticks, all cores
};

CpuSnap cpu_snap(pid_t server) {
  CpuSnap s;
  s.t = now_ns();
  s.server = proc_cpu_s(server);
  s.bench = self_cpu_s();
  if (FILE* f = std::fopen("/proc/stat", "r")) {
    unsigned long long v[10] = {};
    if (std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                    &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]) >= 8) {
      double total = 0;
      for (int i = 0; i < 8; ++i) total += static_cast<double>(v[i]);  // guest is in user
      s.machine_total = total;
      s.machine_busy = total - static_cast<double>(v[3] + v[4]);  // minus idle and iowait
    }
    std::fclose(f);
  }
  return s;
}

// "server 98%, bench 51%, others 12% of one core; machine 81% busy (2 cores)"
std::string cpu_use(const CpuSnap& a, const CpuSnap& b) {
  const double wall = secs(b.t - a.t);
  const long cores = sysconf(_SC_NPROCESSORS_ONLN);
  const double server = (b.server - a.server) / wall, bench = (b.bench - a.bench) / wall;
  double machine = 0;
  if (b.machine_total > a.machine_total) {
    machine = (b.machine_busy - a.machine_busy) / (b.machine_total - a.machine_total);
  }
  const double others = std::max(0.0, machine * static_cast<double>(cores) - server - bench);
  char buf[200];
  std::snprintf(buf, sizeof buf,
                "server %.0f%%, bench %.0f%%, other processes %.0f%% of one core; machine %.0f%% "
                "busy (%ld cores)",
                100 * server, 100 * bench, 100 * others, 100 * machine, cores);
  return buf;
}

// ---------------------------------------------------------------------------------------
// Options and output.

struct Options {
  std::string server;
  std::string phase = "all";
  int clients = 1000;
  int idle = 10000;
  double duration = 5;
  int window = 4;
  double rate = 0;    // 0: half the measured maximum
  bool sweep = true;  // phase b: latency at 250, 500, 1k, 2k, ... msg/s too
  int timeout_s = 60;
  int connect_concurrency = 500;      // phase c only; phase a issues every connect at once
  std::string subprotocol = "mixed";  // json | none | mixed (even clients offer json)
  std::string server_log = "/tmp/bench-signaling-server";
  bool no_io_uring = false;  // the generator's own I/O: one system call each
};

void out(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void out(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(stdout, fmt, ap);
  va_end(ap);
  std::fflush(stdout);
}

void row(const char* label, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void row(const char* label, const char* fmt, ...) {
  char value[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(value, sizeof value, fmt, ap);
  va_end(ap);
  std::printf("  %-46s %s\n", label, value);
  std::fflush(stdout);
}

const char* verdict(bool met) {
  return met ? "met" : "MISSED";
}

Ns percentile(const std::vector<Ns>& sorted, double q) {
  if (sorted.empty()) return 0;
  std::size_t rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  if (rank == 0) rank = 1;
  return sorted[std::min(rank, sorted.size()) - 1];
}

std::string human_bytes(double b) {
  char buf[64];
  if (b >= 1e9) {
    std::snprintf(buf, sizeof buf, "%.2f GB", b / 1e9);
  } else if (b >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.2f MB", b / 1e6);
  } else if (b >= 1e3) {
    std::snprintf(buf, sizeof buf, "%.1f kB", b / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.0f B", b);
  }
  return buf;
}

// ---------------------------------------------------------------------------------------
// The server process.

class ServerProc {
 public:
  ~ServerProc() { stop(); }

  bool start(const Options& o, const char* phase) {
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0) return fail("pipe: %s", std::strerror(errno));
    log_path_ = o.server_log.empty() ? "/dev/null" : o.server_log + "-" + phase + ".log";
    std::vector<std::string> args = {
        o.server,  "--address",         "127.0.0.1", "--port",
        "0",       "--max-rate",        "1000000",   "--max-burst",
        "1000000", "--max-connections", "20000",     "--max-connections-per-address",
        "20000"};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ < 0) return fail("fork: %s", std::strerror(errno));
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
      signal(SIGPIPE, SIG_DFL);
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      dup2(pfd[1], 1);
      int lf = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (lf >= 0) dup2(lf, 2);
      execv(argv[0], argv.data());
      std::fprintf(stderr, "exec %s: %s\n", argv[0], std::strerror(errno));
      _exit(127);
    }
    g_server_pid = pid_;
    close(pfd[1]);
    out_fd_ = pfd[0];
    // Wait for "Listening on http://127.0.0.1:PORT/".
    std::string line;
    const Ns deadline = now_ns() + 15 * kS;
    while (line.find('\n') == std::string::npos) {
      Ns left = deadline - now_ns();
      if (left <= 0)
        return fail("no \"Listening on\" line within 15 s (log: %s)", log_path_.c_str());
      pollfd p{out_fd_, POLLIN, 0};
      int r = poll(&p, 1, static_cast<int>(left / kMs) + 1);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) continue;
      char buf[256];
      ssize_t n = read(out_fd_, buf, sizeof buf);
      if (n <= 0) return fail("server exited before listening (log: %s)", log_path_.c_str());
      line.append(buf, static_cast<std::size_t>(n));
    }
    static const char prefix[] = "Listening on http://127.0.0.1:";
    std::size_t at = line.find(prefix);
    if (at == std::string::npos) return fail("unexpected first line: %s", line.c_str());
    port_ = std::atoi(line.c_str() + at + sizeof prefix - 1);
    if (port_ <= 0 || port_ > 65535) return fail("no port in: %s", line.c_str());
    fcntl(out_fd_, F_SETFL, O_NONBLOCK);
    return true;
  }

  // True while the process runs; reaps it (once) when it has exited.
  bool alive() {
    if (pid_ <= 0 || exited_) return false;
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exited_ = true;
      exit_status_ = status;
      return false;
    }
    return true;
  }

  void stop() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGTERM);
      const Ns deadline = now_ns() + 5 * kS;
      while (alive() && now_ns() < deadline) sleep_ns(10 * kMs);
      if (alive()) {
        std::fprintf(stderr, "server did not exit 5 s after SIGTERM: SIGKILL\n");
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
        exited_ = true;
      }
    }
    if (out_fd_ >= 0) close(out_fd_);
    out_fd_ = -1;
    pid_ = -1;
    g_server_pid = 0;
  }

  std::string describe_exit() const {
    char buf[96];
    if (WIFSIGNALED(exit_status_)) {
      std::snprintf(buf, sizeof buf, "killed by signal %d", WTERMSIG(exit_status_));
    } else {
      std::snprintf(buf, sizeof buf, "exit status %d", WEXITSTATUS(exit_status_));
    }
    return buf;
  }

  pid_t pid() const { return pid_; }
  int port() const { return port_; }
  const std::string& error() const { return error_; }
  const std::string& log_path() const { return log_path_; }
  long rss_kib() const { return proc_status_kib(pid_, "VmRSS:"); }
  long hwm_kib() const { return proc_status_kib(pid_, "VmHWM:"); }
  double cpu_s() const { return proc_cpu_s(pid_); }

 private:
  bool fail(const char* fmt, ...) __attribute__((format(printf, 2, 3))) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    error_ = buf;
    return false;
  }

  pid_t pid_ = -1;
  int out_fd_ = -1;
  int port_ = 0;
  bool exited_ = false;
  int exit_status_ = 0;
  std::string error_;
  std::string log_path_;
};

// ---------------------------------------------------------------------------------------
// The clients and their event loop.

struct Client {
  enum class St : std::uint8_t { kIdle, kConnecting, kHandshake, kOpen, kClosed };
  int fd = -1;
  St st = St::kIdle;
  bool writable = false;
  bool dirty = false;
  bool offer_json = false;
  bool full_parse = true;  // false: large frames are skipped, only their head is looked at
  bool close_sent = false;
  bool in_frag = false;
  std::string out;
  std::size_t out_off = 0;
  std::string in;
  std::string frag;
  std::uint64_t skip_left = 0;  // bytes of a skipped frame still to come
  std::uint64_t skip_len = 0;
  std::string skip_head;
  std::string accept;  // expected Sec-WebSocket-Accept
  std::string name;
  std::int64_t id = -1;
  long users = -1;  // entries in the latest complete user list
  Ns t_connect = 0, t_open = 0, t_id = 0, t_full = 0;
  // Relay (phase b).
  int partner = -1;
  std::uint64_t sent_seq = 0;    // next seq this client sends
  std::uint64_t expect_seq = 0;  // next seq expected from the partner
  std::int64_t inflight = 0;     // own messages not yet received by the partner
};

struct Stats {
  std::uint64_t wire_in = 0, wire_out = 0, frames_in = 0, msgs_in = 0, payload_in = 0;
  std::uint64_t ids = 0, userlists = 0, userlist_bytes = 0, rejects = 0, errors = 0, other = 0;
  std::uint64_t pings = 0, server_closes = 0, unexpected_closes = 0, connect_failures = 0,
                handshake_failures = 0, protocol_errors = 0;
  std::string first_problem;
};

enum class Relay { kOff, kWindow, kPaced, kDrain };

constexpr std::size_t kSkipAbove = 4096;  // frames larger than this are skipped when !full_parse
constexpr std::size_t kSkipHead = 256;

// The generator's system calls in batches (one io_uring_enter() for all the sends of a loop
// turn, one for all the reads), when built with liburing and allowed by the kernel.
class Uring {
 public:
  static constexpr std::size_t kBatch = 1024;
  static constexpr std::size_t kSlice = 16 * 1024;  // bytes one batched read takes

  explicit Uring(bool wanted) {
#if BENCH_URING
    ok_ = wanted && io_uring_queue_init(kBatch, &ring_, 0) == 0;
    if (ok_) arena_.resize(kBatch * kSlice);
#else
    (void)wanted;
#endif
  }
  ~Uring() {
#if BENCH_URING
    if (ok_) io_uring_queue_exit(&ring_);
#endif
  }
  Uring(const Uring&) = delete;
  Uring& operator=(const Uring&) = delete;

  bool ok() const {
    return ok_;
  }
  // The buffer of read request k.
  char* slice(std::size_t k) {
    return arena_.data() + k * kSlice;
  }
  // Prepares request k (k < kBatch): a read into slice(k), or a send.
  void recv(std::size_t k, int fd) {
    prep(k, fd, slice(k), kSlice, false);
  }
  void send(std::size_t k, int fd, const char* data, std::size_t len) {
    prep(k, fd, const_cast<char*>(data), len, true);
  }
  // Submits the `count` requests prepared and waits for all of them (all are non-blocking).
  // result(k): bytes, or -errno (-EIO when the ring failed).
  void run(unsigned count) {
    std::fill(results_.begin(), results_.end(), -EIO);
#if BENCH_URING
    int r;
    do {
      r = io_uring_submit_and_wait(&ring_, count);
    } while (r == -EINTR);
    for (unsigned seen = 0; r >= 0 && seen < count;) {
      io_uring_cqe* cqe = nullptr;
      r = io_uring_wait_cqe(&ring_, &cqe);
      if (r == -EINTR) {
        r = 0;
        continue;
      }
      if (r < 0) break;
      if (cqe->user_data < kBatch) results_[cqe->user_data] = cqe->res;
      io_uring_cqe_seen(&ring_, cqe);
      ++seen;
    }
#else
    (void)count;
#endif
  }
  int result(std::size_t k) const {
    return results_[k];
  }

 private:
  void prep(std::size_t k, int fd, char* buf, std::size_t len, bool send) {
#if BENCH_URING
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (send) {
      io_uring_prep_send(sqe, fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    } else {
      io_uring_prep_recv(sqe, fd, buf, len, MSG_DONTWAIT);
    }
    io_uring_sqe_set_data64(sqe, k);
#else
    (void)k, (void)fd, (void)buf, (void)len, (void)send;
#endif
  }

  bool ok_ = false;
#if BENCH_URING
  io_uring ring_{};
#endif
  std::vector<char> arena_;
  std::vector<int> results_ = std::vector<int>(kBatch);
};

class Loop {
 public:
  Loop(const Options& o, ServerProc& server, int n)
      : uring_(!o.no_io_uring), server_(server), clients_(n) {
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    addr_.sin_family = AF_INET;
    addr_.sin_port = htons(static_cast<std::uint16_t>(server.port()));
    addr_.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const int width = n > 9999 ? 5 : 4;
    for (int i = 0; i < n; ++i) {
      char name[32];
      std::snprintf(name, sizeof name, "u%0*d", width, i + 1);
      clients_[static_cast<std::size_t>(i)].name = name;
      clients_[static_cast<std::size_t>(i)].offer_json =
          o.subprotocol == "json" || (o.subprotocol == "mixed" && i % 2 == 0);
    }
    scratch_.resize(256 * 1024);
  }
  ~Loop() {
    close_all();
    if (ep_ >= 0) close(ep_);
  }
  const char* io_mode() const {
    return uring_.ok() ? "io_uring, a batch per turn" : "a system call each";
  }
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  std::vector<Client>& clients() { return clients_; }
  Client& client(int i) { return clients_[static_cast<std::size_t>(i)]; }
  int size() const { return static_cast<int>(clients_.size()); }
  Stats& stats() { return stats_; }

  // Behaviour switches.
  bool register_on_id = true;
  long expected_users = -1;  // a client is "full" once its latest user list has this many

  // Progress counters.
  int opened = 0, with_id = 0, full = 0, closed = 0, pending = 0;

  // Relay state and results (phase b).
  Relay relay = Relay::kOff;
  int window = 4;
  std::int64_t inflight_cap = 10000;
  std::uint64_t sent = 0, delivered = 0, order_errors = 0, name_errors = 0, skipped = 0;
  Ns record_from = kNever, record_to = kNever;  // record latencies of sends in [from, to)
  std::vector<Ns> latencies;
  Ns paced_start = 0;
  double paced_interval_ns = 0;
  std::uint64_t paced_k = 0;
  Ns paced_max_lag = 0;

  // Non-blocking connect of client i; the handshake follows when the socket is writable.
  void connect_one(int i) {
    Client& c = client(i);
    c.t_connect = now_ns();
    c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) {
      problem("socket: %s", std::strerror(errno));
      stats_.connect_failures++;
      c.st = Client::St::kClosed;
      closed++;
      return;
    }
    int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c.fd, reinterpret_cast<const sockaddr*>(&addr_), sizeof addr_) != 0 &&
        errno != EINPROGRESS) {
      problem("connect: %s", std::strerror(errno));
      stats_.connect_failures++;
      ::close(c.fd);
      c.fd = -1;
      c.st = Client::St::kClosed;
      closed++;
      return;
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.u32 = static_cast<std::uint32_t>(i);
    epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev);
    c.st = Client::St::kConnecting;
    pending++;
  }

  // Connects clients [next_connect_, size) keeping at most `limit` handshakes in flight.
  void connect_more(int limit) {
    while (next_connect_ < size() && pending < limit) connect_one(next_connect_++);
  }
  bool all_connects_issued() const { return next_connect_ >= size(); }

  void send_username(int i) {
    Client& c = client(i);
    char buf[160];
    int n = std::snprintf(buf, sizeof buf,
                          "{\"type\":\"username\",\"name\":\"%s\",\"id\":%" PRId64 ",\"date\":0}",
                          c.name.c_str(), c.id);
    send_frame(c, 0x1, std::string_view(buf, static_cast<std::size_t>(n)));
  }

  void send_ping(int i, Ns t) {
    Client& c = client(i);
    const Client& p = client(c.partner);
    char buf[192];
    int n = std::snprintf(buf, sizeof buf,
                          "{\"type\":\"app-ping\",\"target\":\"%s\",\"seq\":%" PRIu64
                          ",\"t\":%" PRId64 "}",
                          p.name.c_str(), c.sent_seq++, t);
    send_frame(c, 0x1, std::string_view(buf, static_cast<std::size_t>(n)));
    c.inflight++;
    sent++;
  }

  void top_up(int i, Ns t) {
    Client& c = client(i);
    while (c.st == Client::St::kOpen && c.inflight < window) send_ping(i, t);
  }

  // Paced sending: message k is due at paced_start + k * interval, from client k % n.
  Ns paced_tick(Ns now) {
    const int n = relay_senders_;
    while (true) {
      Ns due = paced_start + static_cast<Ns>(static_cast<double>(paced_k) * paced_interval_ns);
      if (due > now) return due;
      int i = static_cast<int>(paced_k % static_cast<std::uint64_t>(n));
      paced_k++;
      Client& c = client(i);
      if (c.st != Client::St::kOpen || c.inflight >= inflight_cap) {
        skipped++;
        continue;
      }
      paced_max_lag = std::max(paced_max_lag, now - due);
      send_ping(i, now);
    }
  }

  void set_relay_senders(int n) { relay_senders_ = n; }

  std::int64_t total_inflight() const {
    std::int64_t s = 0;
    for (const Client& c : clients_) s += c.inflight;
    return s;
  }

  // Runs the loop until done() is true (returns true) or the deadline (returns false).
  // tick(now) may queue sends and returns when it next wants to run.
  template <class Done, class Tick>
  bool run(Ns deadline, Done&& done, Tick&& tick) {
    std::array<epoll_event, 1024> evs;
    Ns next_alive_check = 0;
    while (true) {
      Ns now = now_ns();
      Ns wake = tick(now);
      flush_dirty();
      if (done()) return true;
      if (now >= deadline) return false;
      if (now >= next_alive_check) {
        if (!server_.alive()) {
          problem("server exited (%s)", server_.describe_exit().c_str());
          server_dead_ = true;
          return false;
        }
        next_alive_check = now + 100 * kMs;
      }
      Ns until = std::min({deadline, wake, now + 50 * kMs});
      Ns wait = std::max<Ns>(0, until - now);
      // A send due within microseconds: look for input and come back instead of sleeping.
      // Sleeping and being woken per message would cost the generator more than the send.
      if (wait < kSpinNs) wait = 0;
      timespec ts{static_cast<time_t>(wait / kS), static_cast<long>(wait % kS)};
      int n = epoll_pwait2(ep_, evs.data(), static_cast<int>(evs.size()), &ts, nullptr);
      if (n < 0) {
        if (errno == EINTR) continue;
        problem("epoll_pwait2: %s", std::strerror(errno));
        return false;
      }
      readers_.clear();
      for (int k = 0; k < n; ++k) handle(evs[static_cast<std::size_t>(k)]);
      if (!readers_.empty()) read_batch();
    }
  }
  template <class Done>
  bool run(Ns deadline, Done&& done) {
    return run(deadline, std::forward<Done>(done), [](Ns) { return kNever; });
  }
  // Keeps reading (and answering pings) for d.
  void pump(Ns d) {
    run(now_ns() + d, [] { return false; });
  }

  bool server_dead() const { return server_dead_; }

  // Gives up on client i (it took too long): not counted as a problem.
  void abandon(int i) {
    Client& c = client(i);
    if (c.st == Client::St::kClosed) return;
    drop(c, true);
  }

  void close_all() {
    for (Client& c : clients_) {
      if (c.fd >= 0) {
        ::close(c.fd);
        c.fd = -1;
      }
      c.st = Client::St::kClosed;
      std::string().swap(c.in);
      std::string().swap(c.out);
    }
  }

  void problem(const char* fmt, ...) __attribute__((format(printf, 2, 3))) {
    if (!stats_.first_problem.empty()) return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    stats_.first_problem = buf;
  }

 private:
  void handle(const epoll_event& ev) {
    Client& c = clients_[ev.data.u32];
    if (c.fd < 0) return;
    if (c.st == Client::St::kConnecting) {
      if (!(ev.events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0 || (ev.events & (EPOLLERR | EPOLLHUP))) {
        problem("connect: %s", std::strerror(err ? err : ECONNRESET));
        stats_.connect_failures++;
        drop(c, false);
        return;
      }
      start_handshake(c);
    }
    if (ev.events & EPOLLOUT) {
      c.writable = true;
      flush(c);
    }
    if (c.fd >= 0 && (ev.events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
      if (uring_.ok() && c.st == Client::St::kOpen) {
        readers_.push_back(ev.data.u32);
      } else {
        read_all(c);
      }
    }
  }

  // One read for each client in readers_, in one system call (io_uring).
  void read_batch() {
    for (std::size_t start = 0; start < readers_.size(); start += Uring::kBatch) {
      std::size_t count = std::min<std::size_t>(Uring::kBatch, readers_.size() - start);
      for (std::size_t k = 0; k < count; ++k) uring_.recv(k, clients_[readers_[start + k]].fd);
      uring_.run(static_cast<unsigned>(count));
      Ns t = now_ns();
      for (std::size_t k = 0; k < count; ++k) {
        Client& c = clients_[readers_[start + k]];
        if (c.fd < 0) continue;  // dropped while an earlier one was handled
        int n = uring_.result(k);
        if (n > 0) {
          stats_.wire_in += static_cast<std::uint64_t>(n);
          feed(c, uring_.slice(k), static_cast<std::size_t>(n), t);
          // A full slice: there may be more. Read on (edge-triggered: nothing else tells).
          if (c.fd >= 0 && static_cast<std::size_t>(n) == Uring::kSlice) read_all(c);
        } else if (n == 0) {
          if (!c.close_sent) problem("connection closed by the server without a close frame");
          drop(c, false);
        } else if (n != -EAGAIN && n != -EINTR) {
          problem("read: %s", std::strerror(-n));
          drop(c, false);
        }
      }
    }
  }

  void start_handshake(Client& c) {
    std::uint8_t key[16];
    for (int i = 0; i < 16; i += 8) {
      std::uint64_t r = rng_.next();
      std::memcpy(key + i, &r, 8);
    }
    std::string k = base64(key, sizeof key);
    auto digest = sha1(k + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    c.accept = base64(digest.data(), digest.size());
    c.out += "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(server_.port()) +
             "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + k +
             "\r\nSec-WebSocket-Version: 13\r\n";
    if (c.offer_json) c.out += "Sec-WebSocket-Protocol: json\r\n";
    c.out += "\r\n";
    c.st = Client::St::kHandshake;
    c.writable = true;
  }

  void read_all(Client& c) {
    while (c.fd >= 0) {
      ssize_t n = ::read(c.fd, scratch_.data(), scratch_.size());
      if (n > 0) {
        Ns t = now_ns();
        stats_.wire_in += static_cast<std::uint64_t>(n);
        if (c.st == Client::St::kHandshake) {
          c.in.append(scratch_.data(), static_cast<std::size_t>(n));
          handshake_response(c, t);
        } else {
          feed(c, scratch_.data(), static_cast<std::size_t>(n), t);
        }
        // A short read emptied the socket: anything newer raises a new edge. (Reading on to
        // EAGAIN would cost a system call per wakeup and client for nothing.)
        if (static_cast<std::size_t>(n) < scratch_.size()) return;
        continue;
      }
      if (n == 0) {
        if (!c.close_sent) problem("connection closed by the server without a close frame");
        drop(c, false);
        return;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      problem("read: %s", std::strerror(errno));
      drop(c, false);
      return;
    }
  }

  void handshake_response(Client& c, Ns t) {
    std::size_t end = c.in.find("\r\n\r\n");
    if (end == std::string::npos) {
      if (c.in.size() > 16384) handshake_failed(c, "response headers too long");
      return;
    }
    std::string_view head(c.in.data(), end);
    if (head.substr(0, 12) != "HTTP/1.1 101") {
      std::size_t eol = head.find("\r\n");
      handshake_failed(c, std::string(head.substr(0, eol)).c_str());
      return;
    }
    std::string accept, proto;
    std::size_t pos = head.find("\r\n");
    while (pos != std::string_view::npos && pos < head.size()) {
      std::size_t start = pos + 2;
      std::size_t eol = head.find("\r\n", start);
      std::string_view line =
          head.substr(start, eol == std::string_view::npos ? head.npos : eol - start);
      std::size_t colon = line.find(':');
      if (colon != std::string_view::npos) {
        std::string key(line.substr(0, colon));
        for (char& ch : key) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        std::string_view value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
        while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
        if (key == "sec-websocket-accept") accept = value;
        if (key == "sec-websocket-protocol") proto = value;
      }
      pos = eol;
    }
    if (accept != c.accept) return handshake_failed(c, "wrong Sec-WebSocket-Accept");
    if (c.offer_json && proto != "json") {
      return handshake_failed(c, "subprotocol json offered but not selected");
    }
    if (!c.offer_json && !proto.empty()) {
      return handshake_failed(c, "a subprotocol was selected though none was offered");
    }
    std::string rest = c.in.substr(end + 4);
    c.in.clear();
    c.st = Client::St::kOpen;
    c.t_open = t;
    pending--;
    opened++;
    if (!rest.empty()) feed(c, rest.data(), rest.size(), t);
  }

  void handshake_failed(Client& c, const char* why) {
    problem("handshake: %s", why);
    stats_.handshake_failures++;
    drop(c, false);
  }

  void drop(Client& c, bool expected) {
    if (c.fd >= 0) ::close(c.fd);
    c.fd = -1;
    if (c.st == Client::St::kConnecting || c.st == Client::St::kHandshake) pending--;
    if (c.st != Client::St::kClosed) closed++;
    c.st = Client::St::kClosed;
    if (!expected) stats_.unexpected_closes++;
  }

  void feed(Client& c, const char* p, std::size_t n, Ns t) {
    while (n > 0 && c.fd >= 0) {
      if (c.skip_left) {
        std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(n, c.skip_left));
        if (c.skip_head.size() < kSkipHead) {
          c.skip_head.append(p, std::min(take, kSkipHead - c.skip_head.size()));
        }
        c.skip_left -= take;
        p += take;
        n -= take;
        if (!c.skip_left) on_text(c, c.skip_head, c.skip_len, true, t);
        continue;
      }
      if (!c.in.empty()) {
        c.in.append(p, n);
        n = 0;
        std::size_t used = parse_frames(c, c.in.data(), c.in.size(), t);
        if (c.skip_left) {
          c.in.clear();
        } else {
          c.in.erase(0, used);
        }
        return;
      }
      std::size_t used = parse_frames(c, p, n, t);
      p += used;
      n -= used;
      if (c.skip_left) continue;
      if (n) c.in.assign(p, n);
      return;
    }
  }

  // Parses whole frames from buf; returns the bytes consumed (all of them when it enters
  // skip mode for a large frame).
  std::size_t parse_frames(Client& c, const char* buf, std::size_t len, Ns t) {
    std::size_t pos = 0;
    while (c.fd >= 0) {
      std::size_t avail = len - pos;
      if (avail < 2) break;
      const auto* p = reinterpret_cast<const std::uint8_t*>(buf + pos);
      const bool fin = p[0] & 0x80;
      const std::uint8_t op = p[0] & 0x0f;
      std::uint64_t plen = p[1] & 0x7f;
      std::size_t hdr = 2;
      if (plen == 126) {
        if (avail < 4) break;
        plen = (std::uint64_t{p[2]} << 8) | p[3];
        hdr = 4;
      } else if (plen == 127) {
        if (avail < 10) break;
        plen = 0;
        for (int i = 2; i < 10; ++i) plen = (plen << 8) | p[i];
        hdr = 10;
      }
      if ((p[0] & 0x70) || (p[1] & 0x80) || plen > (1ull << 30) ||
          (op >= 8 && (plen > 125 || !fin)) || (op > 2 && op < 8) || op > 10) {
        protocol_error(c, "bad frame header from the server");
        return len;
      }
      const std::size_t body = avail - hdr;
      if (op == 0x1 && fin && !c.in_frag && !c.full_parse && plen > kSkipAbove) {
        stats_.frames_in++;
        if (body >= plen) {
          on_text(c, std::string_view(buf + pos + hdr, kSkipHead), plen, true, t);
          pos += hdr + static_cast<std::size_t>(plen);
          continue;
        }
        c.skip_head.assign(buf + pos + hdr, std::min(body, kSkipHead));
        c.skip_len = plen;
        c.skip_left = plen - body;
        return len;
      }
      if (body < plen) break;
      stats_.frames_in++;
      std::string_view payload(buf + pos + hdr, static_cast<std::size_t>(plen));
      pos += hdr + static_cast<std::size_t>(plen);
      switch (op) {
        case 0x0:
          if (!c.in_frag) {
            protocol_error(c, "continuation without a start");
            return len;
          }
          c.frag.append(payload);
          if (fin) {
            c.in_frag = false;
            on_text(c, c.frag, c.frag.size(), false, t);
            c.frag.clear();
          }
          break;
        case 0x1:
        case 0x2:
          if (c.in_frag) {
            protocol_error(c, "new message inside a fragmented one");
            return len;
          }
          if (fin) {
            on_text(c, payload, payload.size(), false, t);
          } else {
            c.frag.assign(payload);
            c.in_frag = true;
          }
          break;
        case 0x8: {
          stats_.server_closes++;
          unsigned code =
              payload.size() >= 2
                  ? (static_cast<unsigned>(static_cast<std::uint8_t>(payload[0])) << 8) |
                        static_cast<std::uint8_t>(payload[1])
                  : 1005;
          std::string reason(payload.size() > 2 ? payload.substr(2) : std::string_view());
          problem("server closed a connection: %u %s", code, reason.c_str());
          if (!c.close_sent)
            send_frame(c, 0x8, payload.substr(0, std::min<std::size_t>(2, payload.size())));
          c.close_sent = true;
          break;
        }
        case 0x9:
          stats_.pings++;
          send_frame(c, 0xA, payload);
          break;
        default:  // pong
          break;
      }
    }
    return pos;
  }

  void protocol_error(Client& c, const char* why) {
    problem("protocol: %s", why);
    stats_.protocol_errors++;
    drop(c, false);
  }

  void on_text(Client& c, std::string_view payload, std::uint64_t full_len, bool truncated, Ns t) {
    stats_.msgs_in++;
    stats_.payload_in += full_len;
    std::string_view type, name;
    std::int64_t id = -1, seq = -1, sent_at = -1;
    long users = -1;
    for_each_member(payload, [&](std::string_view k, std::string_view v) {
      if (k == "type") {
        type = json_str(v);
      } else if (k == "id") {
        id = json_int(v);
      } else if (k == "seq") {
        seq = json_int(v);
      } else if (k == "t") {
        sent_at = json_int(v);
      } else if (k == "name") {
        name = json_str(v);
      } else if (k == "users" && !truncated) {
        users = json_array_size(v);
      }
    });
    if (type == "app-ping") {
      on_relayed(c, name, seq, sent_at, t);
    } else if (type == "userlist") {
      stats_.userlists++;
      stats_.userlist_bytes += full_len;
      if (!truncated) {
        if (users < 0) problem("unparsable user list");
        c.users = users;
        if (users == expected_users && c.t_full == 0) {
          c.t_full = t;
          full++;
        }
      }
    } else if (type == "id") {
      stats_.ids++;
      if (c.id < 0) {
        c.id = id;
        c.t_id = t;
        with_id++;
        if (register_on_id) send_username(static_cast<int>(&c - clients_.data()));
      }
    } else if (type == "rejectusername") {
      stats_.rejects++;
      problem("name %s rejected, given %.*s", c.name.c_str(), static_cast<int>(name.size()),
              name.data());
    } else if (type == "error") {
      stats_.errors++;
      problem("error from the server: %.*s",
              static_cast<int>(std::min<std::size_t>(payload.size(), 300)), payload.data());
    } else {
      stats_.other++;
    }
  }

  void on_relayed(Client& r, std::string_view from, std::int64_t seq, std::int64_t sent_at, Ns t) {
    if (r.partner < 0) {
      problem("relayed message to a client without partner");
      return;
    }
    Client& s = client(r.partner);
    if (from != s.name) {
      name_errors++;
      problem("relayed message names %.*s, expected %s", static_cast<int>(from.size()), from.data(),
              s.name.c_str());
    }
    if (seq < 0 || static_cast<std::uint64_t>(seq) != r.expect_seq) {
      order_errors++;
      problem("relayed seq %" PRId64 ", expected %" PRIu64, seq, r.expect_seq);
    }
    r.expect_seq = static_cast<std::uint64_t>(seq) + 1;
    s.inflight--;
    delivered++;
    if (sent_at >= record_from && sent_at < record_to) latencies.push_back(t - sent_at);
    if (relay == Relay::kWindow) top_up(r.partner, t);
  }

  void send_frame(Client& c, std::uint8_t op, std::string_view payload) {
    if (c.fd < 0) return;
    const std::size_t n = payload.size();
    char hdr[14];
    std::size_t h = 0;
    hdr[h++] = static_cast<char>(0x80 | op);
    if (n < 126) {
      hdr[h++] = static_cast<char>(0x80 | n);
    } else if (n < 65536) {
      hdr[h++] = static_cast<char>(0x80 | 126);
      hdr[h++] = static_cast<char>(n >> 8);
      hdr[h++] = static_cast<char>(n & 0xff);
    } else {
      hdr[h++] = static_cast<char>(0x80 | 127);
      for (int i = 7; i >= 0; --i)
        hdr[h++] = static_cast<char>((std::uint64_t{n} >> (8 * i)) & 0xff);
    }
    const std::uint32_t mask32 = static_cast<std::uint32_t>(rng_.next());
    char mask[4];
    std::memcpy(mask, &mask32, 4);
    std::memcpy(hdr + h, mask, 4);
    h += 4;
    c.out.append(hdr, h);
    std::size_t at = c.out.size();
    c.out.append(payload);
    char* d = c.out.data() + at;
    for (std::size_t i = 0; i < n; ++i) d[i] ^= mask[i & 3];
    mark_dirty(c);
  }

  void mark_dirty(Client& c) {
    if (c.dirty) return;
    c.dirty = true;
    dirty_.push_back(static_cast<std::uint32_t>(&c - clients_.data()));
  }

  void flush_dirty() {
    if (uring_.ok()) {
      flush_batched();
      return;
    }
    for (std::size_t k = 0; k < dirty_.size(); ++k) {
      Client& c = clients_[dirty_[k]];
      c.dirty = false;
      flush(c);
    }
    dirty_.clear();
  }

  // flush() for every dirty client, one system call per Uring::kBatch clients.
  void flush_batched() {
    std::size_t i = 0;
    while (i < dirty_.size()) {
      writers_.clear();
      while (i < dirty_.size() && writers_.size() < Uring::kBatch) {
        Client& c = clients_[dirty_[i++]];
        c.dirty = false;
        if (c.fd >= 0 && c.writable && c.out_off < c.out.size()) writers_.push_back(&c);
      }
      for (std::size_t k = 0; k < writers_.size(); ++k) {
        Client& c = *writers_[k];
        uring_.send(k, c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off);
      }
      uring_.run(static_cast<unsigned>(writers_.size()));
      for (std::size_t k = 0; k < writers_.size(); ++k) {
        Client& c = *writers_[k];
        int n = uring_.result(k);
        if (n > 0) {
          c.out_off += static_cast<std::size_t>(n);
          stats_.wire_out += static_cast<std::uint64_t>(n);
        } else if (n == -EAGAIN) {
          c.writable = false;
        } else if (n != -EINTR) {
          problem("send: %s", std::strerror(-n));
          drop(c, false);
          continue;
        }
        flush(c);  // a short write: the rest, or EAGAIN; else it tidies the buffer
      }
    }
    dirty_.clear();
  }

  void flush(Client& c) {
    while (c.fd >= 0 && c.writable && c.out_off < c.out.size()) {
      ssize_t n = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
      if (n > 0) {
        c.out_off += static_cast<std::size_t>(n);
        stats_.wire_out += static_cast<std::uint64_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        c.writable = false;
        break;
      }
      problem("send: %s", std::strerror(errno));
      drop(c, false);
      return;
    }
    if (c.out_off == c.out.size()) {
      c.out.clear();
      c.out_off = 0;
    } else if (c.out_off > 65536) {
      c.out.erase(0, c.out_off);
      c.out_off = 0;
    }
  }

  Uring uring_;
  std::vector<std::uint32_t> readers_;
  std::vector<Client*> writers_;

  ServerProc& server_;
  std::vector<Client> clients_;
  int ep_ = -1;
  sockaddr_in addr_{};
  std::vector<char> scratch_;
  std::vector<std::uint32_t> dirty_;
  Stats stats_;
  Rng rng_;
  int next_connect_ = 0;
  int relay_senders_ = 0;
  bool server_dead_ = false;
};

// ---------------------------------------------------------------------------------------
// Phases.

struct PhaseGuard {  // a hard limit for a whole phase, on top of every wait's own deadline
  explicit PhaseGuard(unsigned s) { alarm(s); }
  ~PhaseGuard() { alarm(0); }
};

std::string load_average() {
  char buf[128] = {};
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (!std::fgets(buf, sizeof buf, f)) buf[0] = '\0';
    std::fclose(f);
  }
  std::string s(buf);
  // "0.50 0.40 0.30 1/123 4567": keep the three averages.
  std::size_t cut = 0;
  for (int spaces = 0; cut < s.size(); ++cut) {
    if (s[cut] == ' ' && ++spaces == 3) break;
  }
  return s.substr(0, cut);
}

void print_problems(Loop& L) {
  const Stats& s = L.stats();
  if (s.connect_failures || s.handshake_failures || s.unexpected_closes || s.protocol_errors ||
      s.errors || s.rejects || s.server_closes) {
    row("problems",
        "connect failures %" PRIu64 ", handshake failures %" PRIu64 ", unexpected closes %" PRIu64
        ", protocol errors %" PRIu64 ", server errors %" PRIu64 ", renames %" PRIu64
        ", server closes %" PRIu64,
        s.connect_failures, s.handshake_failures, s.unexpected_closes, s.protocol_errors, s.errors,
        s.rejects, s.server_closes);
  }
  if (!s.first_problem.empty()) row("first problem", "%s", s.first_problem.c_str());
}

bool clean(Loop& L) {
  const Stats& s = L.stats();
  return !L.server_dead() && s.connect_failures == 0 && s.handshake_failures == 0 &&
         s.unexpected_closes == 0 && s.protocol_errors == 0 && s.errors == 0 && s.rejects == 0;
}

bool start_server(ServerProc& S, const Options& o, const char* phase) {
  // What the rest of the machine is doing: on a shared machine, figures vary with it.
  const CpuSnap m0 = cpu_snap(getpid());
  sleep_ns(500 * kMs);
  const CpuSnap m1 = cpu_snap(getpid());
  if (m1.machine_total > m0.machine_total) {
    row("machine before the phase", "%.0f%% busy over 0.5 s (%ld cores), load average %s",
        100 * (m1.machine_busy - m0.machine_busy) / (m1.machine_total - m0.machine_total),
        sysconf(_SC_NPROCESSORS_ONLN), load_average().c_str());
  }
  if (!S.start(o, phase)) {
    out("  cannot start the server: %s\n", S.error().c_str());
    return false;
  }
  row("server", "pid %d, port %d, log %s", static_cast<int>(S.pid()), S.port(),
      S.log_path().c_str());
  return true;
}

bool phase_a(const Options& o) {
  const int n = o.clients;
  out("\n== Phase a: %d clients connect and register at once ==\n", n);
  PhaseGuard guard(static_cast<unsigned>(o.timeout_s + 30));
  ServerProc S;
  if (!start_server(S, o, "a")) return false;
  Loop L(o, S, n);
  row("generator I/O", "%s", L.io_mode());
  L.register_on_id = true;
  L.expected_users = n;
  const CpuSnap c0 = cpu_snap(S.pid());
  const Ns t0 = now_ns();
  for (int i = 0; i < n; ++i) L.connect_one(i);
  const Ns t_issued = now_ns();
  bool ok = L.run(t0 + o.timeout_s * kS, [&] { return L.full + L.closed >= n; });
  const Ns t_end = now_ns();
  const CpuSnap c1 = cpu_snap(S.pid());

  Ns last_open = 0, last_id = 0, last_full = 0;
  std::vector<Ns> full_times;
  for (const Client& c : L.clients()) {
    if (c.t_open) last_open = std::max(last_open, c.t_open - t0);
    if (c.t_id) last_id = std::max(last_id, c.t_id - t0);
    if (c.t_full) {
      last_full = std::max(last_full, c.t_full - t0);
      full_times.push_back(c.t_full - t0);
    }
  }
  std::sort(full_times.begin(), full_times.end());
  const Stats& s = L.stats();
  row("connects issued in", "%.1f ms (all %d, non-blocking)", ms(t_issued - t0), n);
  row("all WebSockets open (101) after", "%.1f ms (%d of %d)", ms(last_open), L.opened, n);
  row("all `id` messages received after", "%.1f ms (%d of %d)", ms(last_id), L.with_id, n);
  if (L.full == n) {
    row("every client holds all names after", "%.1f ms   target: under 1 s  [%s]", ms(last_full),
        verdict(last_full < kS));
  } else {
    row("every client holds all names", "NOT REACHED: %d of %d clients after %.1f s", L.full, n,
        secs(t_end - t0));
  }
  if (!full_times.empty()) {
    row("  per client, full list after", "p50 %.1f ms, p99 %.1f ms",
        ms(percentile(full_times, 0.5)), ms(percentile(full_times, 0.99)));
  }
  row("userlist messages received",
      "%" PRIu64
      " in total, %.1f per client (coalesced; "
      "uncoalesced would be ~%d per client)",
      s.userlists, static_cast<double>(s.userlists) / n, n / 2);
  row("userlist bytes received", "%s (payload), %s on the wire in total",
      human_bytes(static_cast<double>(s.userlist_bytes)).c_str(),
      human_bytes(static_cast<double>(s.wire_in)).c_str());
  row("bytes sent by the clients", "%s", human_bytes(static_cast<double>(s.wire_out)).c_str());
  row("server CPU time", "%.2f s in %.2f s (%.2f ms per client)", c1.server - c0.server,
      secs(c1.t - c0.t), 1e3 * (c1.server - c0.server) / n);
  row("CPU use", "%s", cpu_use(c0, c1).c_str());
  row("server RSS after", "%ld KiB", S.rss_kib());
  print_problems(L);
  L.close_all();
  S.stop();
  return ok && L.full == n && clean(L);
}

// Connects n clients (at most `concurrency` handshakes at once) that register as soon as they
// have their id, and waits until every one holds all n names.
bool connect_and_register(Loop& L, int concurrency, Ns deadline) {
  const int n = L.size();
  L.register_on_id = true;
  L.expected_users = n;
  return L.run(
             deadline, [&] { return L.all_connects_issued() && L.full + L.closed >= n; },
             [&](Ns) {
               L.connect_more(concurrency);
               return kNever;
             }) &&
         L.full == n;
}

// A measured stretch of relayed traffic: its CPU snapshots, messages and latencies.
struct Stretch {
  CpuSnap c0, c1;  // over the measured part
  std::uint64_t delivered_in_span = 0;
  std::uint64_t sent = 0, delivered = 0, lost = 0;  // warm-up and drain included
  Ns p50 = 0, p99 = 0, max = 0;                     // of the messages sent in the measured part
  std::size_t samples = 0;

  Ns span() const { return c1.t - c0.t; }
  // Delivered in the measured part, per second.
  double rate() const { return static_cast<double>(delivered_in_span) / secs(span()); }
  // Server CPU per relayed message: unlike rates, this hardly depends on what else the
  // machine is doing, and it bounds what one dedicated core could relay.
  double server_us_per_message() const {
    return delivered_in_span
               ? 1e6 * (c1.server - c0.server) / static_cast<double>(delivered_in_span)
               : 0.0;
  }
};

void print_cpu_per_message(const Stretch& r) {
  if (r.delivered_in_span == 0) return;
  const double us = r.server_us_per_message();
  row("  server CPU per relayed message", "%.1f us (one dedicated core: at most ~%.0f msg/s)", us,
      us > 0 ? 1e6 / us : 0.0);
}

// Runs the loop with `tick` for `warm` from `start`, then `dur` measured (the latencies of the
// messages sent in it are kept, sorted, in L.latencies), then a drain of up to 5 s so that
// every message is either delivered or counted as lost.
template <class Tick>
Stretch measure(Loop& L, ServerProc& S, Ns start, Ns warm, Ns dur, Tick&& tick) {
  Stretch r;
  L.latencies.clear();
  const std::uint64_t sent0 = L.sent, del0 = L.delivered;
  L.record_from = start + warm;
  L.record_to = start + warm + dur;
  L.run(
      start + warm, [] { return false; }, tick);
  const std::uint64_t d0 = L.delivered;
  r.c0 = cpu_snap(S.pid());
  L.run(
      start + warm + dur, [] { return false; }, tick);
  const std::uint64_t d1 = L.delivered;
  r.c1 = cpu_snap(S.pid());
  L.relay = Relay::kDrain;
  L.run(now_ns() + 5 * kS, [&] { return L.total_inflight() == 0; });
  std::sort(L.latencies.begin(), L.latencies.end());
  r.delivered_in_span = d1 - d0;
  r.sent = L.sent - sent0;
  r.delivered = L.delivered - del0;
  r.lost = r.sent - r.delivered;
  r.p50 = percentile(L.latencies, 0.5);
  r.p99 = percentile(L.latencies, 0.99);
  r.max = L.latencies.empty() ? 0 : L.latencies.back();
  r.samples = L.latencies.size();
  return r;
}

struct Paced : Stretch {
  std::uint64_t skipped = 0;
  Ns p90 = 0, p999 = 0, max_lag = 0;
};

// Sends `rate` messages a second in total, spread evenly over time and over the senders:
// `warm` of warm-up, then `dur` measured.
Paced paced_run(Loop& L, ServerProc& S, double rate, Ns warm, Ns dur) {
  const std::uint64_t skipped0 = L.skipped;
  L.relay = Relay::kPaced;
  L.paced_interval_ns = 1e9 / rate;
  L.paced_k = 0;
  L.paced_max_lag = 0;
  const Ns start = now_ns();
  L.paced_start = start;
  Paced r;
  static_cast<Stretch&>(r) =
      measure(L, S, start, warm, dur, [&](Ns now) { return L.paced_tick(now); });
  r.skipped = L.skipped - skipped0;
  r.p90 = percentile(L.latencies, 0.9);
  r.p999 = percentile(L.latencies, 0.999);
  r.max_lag = L.paced_max_lag;
  return r;
}

struct MaxRun : Stretch {
  int in_flight = 0;
};

// Keeps `in_flight` messages in flight per client: 1 s of warm-up (at most half of `dur`),
// then `dur` measured.
MaxRun max_run(Loop& L, ServerProc& S, int senders, int in_flight, Ns dur) {
  L.relay = Relay::kWindow;
  L.window = in_flight;
  bool filled = false;
  auto fill = [&](Ns now) {  // the first tick fills every window (counted by measure())
    if (!filled) {
      for (int i = 0; i < senders; ++i) L.top_up(i, now);
      filled = true;
    }
    return kNever;
  };
  MaxRun r;
  static_cast<Stretch&>(r) = measure(L, S, now_ns(), std::min<Ns>(kS, dur / 2), dur, fill);
  r.in_flight = in_flight;
  return r;
}

void print_max_run(const char* title, const MaxRun& r, int senders, bool judged) {
  row(title, "%d in flight per client (%d in total)", r.in_flight, r.in_flight * senders);
  if (judged) {
    row("  delivered", "%.0f msg/s over %.2f s   target: at least 100,000 msg/s  [%s]", r.rate(),
        secs(r.span()), verdict(r.rate() >= 100000));
  } else {
    row("  delivered", "%.0f msg/s over %.2f s", r.rate(), secs(r.span()));
  }
  row("  latency at max (queueing included)", "p50 %.2f ms, p99 %.2f ms, max %.2f ms", ms(r.p50),
      ms(r.p99), ms(r.max));
  row("  CPU use", "%s", cpu_use(r.c0, r.c1).c_str());
  print_cpu_per_message(r);
  row("  sent / delivered / lost", "%" PRIu64 " / %" PRIu64 " / %" PRIu64 "   (lost must be 0)",
      r.sent, r.delivered, r.lost);
}

bool phase_b(const Options& o) {
  int n = o.clients;
  out("\n== Phase b: %d registered users relay messages in pairs ==\n", n);
  const Ns dur = static_cast<Ns>(o.duration * 1e9);
  PhaseGuard guard(static_cast<unsigned>(o.timeout_s + 5 * o.duration + 150));
  ServerProc S;
  if (!start_server(S, o, "b")) return false;
  Loop L(o, S, n);
  row("generator I/O", "%s", L.io_mode());
  const Ns t0 = now_ns();
  if (!connect_and_register(L, n, t0 + o.timeout_s * kS)) {
    row("registration", "FAILED: %d of %d clients hold the full list", L.full, n);
    print_problems(L);
    return false;
  }
  row("registered", "%d users in %.1f ms", n, ms(now_ns() - t0));
  L.pump(300 * kMs);  // let the last user lists settle
  const int senders = n - n % 2;
  for (int i = 0; i + 1 < senders; i += 2) {
    L.client(i).partner = i + 1;
    L.client(i + 1).partner = i;
  }
  L.set_relay_senders(senders);
  bool ok = true;

  // 1. The maximum rate of single messages: one in flight per client, so that every message
  // travels alone (its own read, write and TCP segments), as the paced messages below do.
  const MaxRun single = max_run(L, S, senders, 1, dur);
  print_max_run("max throughput, single messages", single, senders, true);
  ok = ok && single.lost == 0;

  // 2. Latency at a paced rate: half the single-message maximum (the same kind of traffic)
  // unless --rate.
  const double rate = o.rate > 0 ? o.rate : single.rate() / 2;
  if (rate >= 1) {
    const Paced r = paced_run(L, S, rate, std::min<Ns>(kS / 2, dur / 4), dur);
    row("paced at", "%.0f msg/s (%s), spread evenly over %d senders", rate,
        o.rate > 0 ? "--rate" : "half the single-message maximum", senders);
    row("  delivered", "%.0f msg/s over %.2f s", r.rate(), secs(r.span()));
    row("  latency, send to receive",
        "p50 %.3f ms, p99 %.3f ms, max %.3f ms   target: p99 under 5 ms  [%s]", ms(r.p50),
        ms(r.p99), ms(r.max), verdict(r.samples > 0 && r.p99 < 5 * kMs));
    row("  latency p90 / p99.9", "%.3f ms / %.3f ms (%zu samples)", ms(r.p90), ms(r.p999),
        r.samples);
    row("  generator lag behind schedule, max", "%.3f ms", ms(r.max_lag));
    row("  CPU use", "%s", cpu_use(r.c0, r.c1).c_str());
    print_cpu_per_message(r);
    row("  sent / delivered / lost",
        "%" PRIu64 " / %" PRIu64 " / %" PRIu64 "   (lost must be 0; %" PRIu64 " sends skipped)",
        r.sent, r.delivered, r.lost, r.skipped);
    ok = ok && r.lost == 0;
  }

  // 3. The maximum rate when clients pipeline: several messages in flight per client, so the
  // server reads and writes several at once. A different kind of traffic from the paced
  // messages, shown for what batching is worth; not the rate the latency is measured at.
  if (o.window > 1) {
    const MaxRun piped = max_run(L, S, senders, o.window, dur);
    print_max_run("max throughput, pipelined", piped, senders, false);
    ok = ok && piped.lost == 0;
  }

  // 4. Latency at fixed rates below the single-message maximum: how it grows with the load.
  if (o.sweep) {
    row("latency by paced rate", "(%.1f s each)", 1.5);
    for (double sr :
         {250.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0, 20000.0, 40000.0, 60000.0, 80000.0}) {
      if (sr > single.rate() * 0.9) break;
      const Paced r = paced_run(L, S, sr, kS / 4, 3 * kS / 2);
      char label[64];
      std::snprintf(label, sizeof label, "  %6.0f msg/s", sr);
      const double wall = secs(r.span());
      row(label,
          "p50 %7.3f ms, p99 %8.3f ms, max %8.3f ms; CPU: server %3.0f%% (%5.1f us/msg), "
          "bench %3.0f%%; lag %.1f ms%s",
          ms(r.p50), ms(r.p99), ms(r.max), 100 * (r.c1.server - r.c0.server) / wall,
          r.server_us_per_message(), 100 * (r.c1.bench - r.c0.bench) / wall, ms(r.max_lag),
          r.lost ? "  LOST MESSAGES" : "");
      ok = ok && r.lost == 0;
    }
  }
  row("  order / sender-name errors", "%" PRIu64 " / %" PRIu64, L.order_errors, L.name_errors);
  row("server CPU, whole phase", "%.2f s", S.cpu_s());
  row("server RSS after", "%ld KiB (peak %ld KiB)", S.rss_kib(), S.hwm_kib());
  print_problems(L);
  L.close_all();
  S.stop();
  return ok && L.order_errors == 0 && L.name_errors == 0 && clean(L);
}

// Samples every 250 ms until, over the last second, the clients received no messages (keepalive
// pings do not count: 10,000 connections get hundreds a second), the server used under 5% of a
// core and its RSS moved by under 1%. Returns the settled RSS (KiB).
// `unsettled` is left empty when settled, else says what still moved at the deadline.
long settle(Loop& L, ServerProc& S, Ns deadline, std::string* unsettled) {
  struct Sample {
    std::uint64_t bytes;
    double cpu;
    long rss;
  };
  std::vector<Sample> samples;
  *unsettled = "server gone";
  while (now_ns() < deadline && !L.server_dead()) {
    L.pump(250 * kMs);
    samples.push_back({L.stats().payload_in, S.cpu_s(), S.rss_kib()});
    if (samples.size() >= 5) {
      const Sample& a = samples[samples.size() - 5];
      const Sample& b = samples.back();
      long lo = b.rss, hi = b.rss;
      for (std::size_t k = samples.size() - 5; k < samples.size(); ++k) {
        lo = std::min(lo, samples[k].rss);
        hi = std::max(hi, samples[k].rss);
      }
      const bool quiet = a.bytes == b.bytes, idle = b.cpu - a.cpu <= 0.05,
                 flat = hi - lo <= hi / 100;
      if (quiet && idle && flat) {
        unsettled->clear();
        return b.rss;
      }
      char why[160];
      std::snprintf(why, sizeof why, "%s%s%s", quiet ? "" : "messages still arriving; ",
                    idle ? "" : "server still busy; ", flat ? "" : "RSS still moving; ");
      *unsettled = why;
      unsettled->resize(unsettled->size() - 2);
      char more[96];
      std::snprintf(more, sizeof more, " (last second: server CPU %.0f%%, RSS %ld..%ld KiB)",
                    100 * (b.cpu - a.cpu), lo, hi);
      *unsettled += more;
    }
  }
  return S.rss_kib();
}

bool phase_c(const Options& o) {
  const int n = o.idle;
  out("\n== Phase c: server memory per idle registered connection (%d connections) ==\n", n);
  PhaseGuard guard(static_cast<unsigned>(7 * o.timeout_s + 120));
  ServerProc S;
  if (!start_server(S, o, "c")) return false;
  sleep_ns(500 * kMs);
  const long rss0 = S.rss_kib();
  const CpuSnap c0 = cpu_snap(S.pid());
  Loop L(o, S, n);
  row("generator I/O", "%s", L.io_mode());
  L.register_on_id = false;
  for (Client& c : L.clients()) c.full_parse = false;  // but the sentinel's, see below

  // 1. Connect everyone (no registration yet: unregistered connections get no user lists).
  const Ns t0 = now_ns();
  std::array<Ns, 4> milestone{};   // when 25, 50, 75, 100% had their id
  std::array<double, 4> cpu_at{};  // the server's CPU time then
  bool ok = L.run(
      t0 + 3 * o.timeout_s * kS,
      [&] { return L.all_connects_issued() && L.with_id + L.closed >= n; },
      [&](Ns now) {
        L.connect_more(o.connect_concurrency);
        for (int q = 0; q < 4; ++q) {
          if (!milestone[q] && L.with_id >= (q + 1) * n / 4) {
            milestone[q] = now;
            cpu_at[q] = S.cpu_s();
          }
        }
        return kNever;
      });
  const Ns t_conn = now_ns();
  const CpuSnap c_conn = cpu_snap(S.pid());
  const int live = L.with_id;
  ok = ok && live == n;
  row("connected", "%d of %d in %.2f s (at most %d handshakes at once)", live, n, secs(t_conn - t0),
      o.connect_concurrency);
  {
    std::string rate_text, cpu_text;
    Ns prev = t0;
    double prev_cpu = c0.server;
    for (int q = 0; q < 4; ++q) {
      char buf[96];
      if (milestone[q]) {
        std::snprintf(buf, sizeof buf, "%s%d%% at %.2f s (%.0f/s)", q ? ", " : "", 25 * (q + 1),
                      secs(milestone[q] - t0), (n / 4.0) / secs(milestone[q] - prev));
        rate_text += buf;
        std::snprintf(buf, sizeof buf, "%s%.2f", q ? ", " : "",
                      1e3 * (cpu_at[q] - prev_cpu) / (n / 4.0));
        cpu_text += buf;
        prev = milestone[q];
        prev_cpu = cpu_at[q];
      } else {
        std::snprintf(buf, sizeof buf, "%s%d%% not reached", q ? ", " : "", 25 * (q + 1));
        rate_text += buf;
      }
    }
    row("  connection rate, by quarter", "%s", rate_text.c_str());
    row("  server CPU per connection, by quarter", "%s ms", cpu_text.c_str());
  }
  row("  CPU use while connecting", "%s", cpu_use(c0, c_conn).c_str());
  // Whoever did not get its id in time is left out; the figures are per connection counted.
  for (int i = 0; i < n; ++i) {
    if (L.client(i).id < 0) L.abandon(i);
  }
  if (live == 0) {
    print_problems(L);
    return false;
  }
  int sentinel_index = -1;
  for (int i = 0; i < n; ++i) {
    if (L.client(i).id >= 0) sentinel_index = i;  // the last one registers last
  }
  Client& sentinel = L.client(sentinel_index);
  sentinel.full_parse = true;
  L.expected_users = live;
  std::string conn_unsettled;
  const long rss_conn = settle(L, S, now_ns() + 10 * kS, &conn_unsettled);

  // 2. Register everyone at once, the sentinel last; wait until it sees every name.
  const Ns t_reg = now_ns();
  const CpuSnap c_reg0 = cpu_snap(S.pid());
  for (int i = 0; i < n; ++i) {
    if (L.client(i).id >= 0) L.send_username(i);
  }
  bool registered = L.run(t_reg + 3 * o.timeout_s * kS, [&] {
    return sentinel.users == live || sentinel.st == Client::St::kClosed;
  });
  const Ns t_reg_done = now_ns();
  const CpuSnap c_reg1 = cpu_snap(S.pid());
  registered = registered && sentinel.users == live;
  if (registered) {
    row("registered", "%d users; the sentinel (registered last) saw all names after %.2f s", live,
        secs(t_reg_done - t_reg));
  } else {
    row("registered", "NOT CONFIRMED: the sentinel holds %ld of %d names after %.2f s",
        sentinel.users, live, secs(t_reg_done - t_reg));
  }
  row("  CPU use while registering", "%s", cpu_use(c_reg0, c_reg1).c_str());
  std::string unsettled;
  const long rss1 = settle(L, S, now_ns() + o.timeout_s * kS, &unsettled);
  const bool stable = unsettled.empty();
  const Ns t_settled = now_ns();
  const CpuSnap c1 = cpu_snap(S.pid());
  const long hwm = S.hwm_kib();
  const Stats& s = L.stats();
  const double per_conn = static_cast<double>(rss1 - rss0) / live;
  row("traffic settled", "%.2f s after the sentinel saw all names", secs(t_settled - t_reg_done));
  row("user lists received in total", "%" PRIu64 " (%.1f per client), %s", s.userlists,
      static_cast<double>(s.userlists) / live,
      human_bytes(static_cast<double>(s.userlist_bytes)).c_str());
  row("server RSS idle, before connections", "%ld KiB", rss0);
  row("server RSS, connected, unregistered", "%ld KiB (%+.1f KiB per connection)%s%s", rss_conn,
      static_cast<double>(rss_conn - rss0) / live,
      conn_unsettled.empty() ? "" : ", not settled: ", conn_unsettled.c_str());
  row("server RSS, registered and idle", "%ld KiB%s%s", rss1,
      stable ? " (settled)" : ", NOT SETTLED: ", unsettled.c_str());
  row("per idle registered connection", "%.1f KiB (%d connections)   target: under 20 KiB  [%s]",
      per_conn, live, verdict(per_conn < 20));
  row("server RSS peak (VmHWM)", "%ld KiB", hwm);
  row("server CPU time, connect + register + settle", "%.2f s", c1.server - c0.server);
  row("keepalive pings answered", "%" PRIu64, s.pings);

  // 3. Everyone leaves: what the server gives back.
  L.close_all();
  Loop empty(o, S, 0);
  std::string gone_unsettled;
  const long rss2 = settle(empty, S, now_ns() + 10 * kS, &gone_unsettled);
  row("server RSS after all disconnected", "%ld KiB%s%s", rss2,
      gone_unsettled.empty() ? "" : ", not settled: ", gone_unsettled.c_str());
  print_problems(L);
  S.stop();
  return ok && registered && stable && clean(L);
}

void usage() {
  std::fprintf(stderr,
               "usage: signaling --server PATH [--phase a|b|c|all] [--clients N] [--idle N]\n"
               "                 [--duration S] [--window N] [--rate MSG_PER_S] [--no-sweep]\n"
               "                 [--timeout S] [--connect-concurrency N]\n"
               "                 [--subprotocol json|none|mixed] [--server-log PREFIX|none]\n"
               "                 [--no-io-uring]\n"
               "Load generator for webrtc-call-server; prints figures (see bench/README.md).\n");
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        usage();
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--server") {
      o.server = value();
    } else if (a == "--phase") {
      o.phase = value();
    } else if (a == "--clients") {
      o.clients = std::atoi(value().c_str());
    } else if (a == "--idle") {
      o.idle = std::atoi(value().c_str());
    } else if (a == "--duration") {
      o.duration = std::atof(value().c_str());
    } else if (a == "--window") {
      o.window = std::atoi(value().c_str());
    } else if (a == "--rate") {
      o.rate = std::atof(value().c_str());
    } else if (a == "--no-sweep") {
      o.sweep = false;
    } else if (a == "--no-io-uring") {
      o.no_io_uring = true;
    } else if (a == "--timeout") {
      o.timeout_s = std::atoi(value().c_str());
    } else if (a == "--connect-concurrency") {
      o.connect_concurrency = std::atoi(value().c_str());
    } else if (a == "--subprotocol") {
      o.subprotocol = value();
    } else if (a == "--server-log") {
      o.server_log = value();
      if (o.server_log == "none") o.server_log.clear();
    } else if (a == "-h" || a == "--help") {
      usage();
      return 0;
    } else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      usage();
      return 2;
    }
  }
  if (o.server.empty() || access(o.server.c_str(), X_OK) != 0) {
    std::fprintf(stderr, "--server PATH must name the webrtc-call-server executable\n");
    usage();
    return 2;
  }
  if (o.phase != "a" && o.phase != "b" && o.phase != "c" && o.phase != "all") {
    usage();
    return 2;
  }
  if (o.clients < 2 || o.clients > 15000 || o.idle < 1 || o.idle > 15000 || o.duration <= 0 ||
      o.duration > 600 || o.window < 1 || o.timeout_s < 1 || o.connect_concurrency < 1 ||
      (o.subprotocol != "json" && o.subprotocol != "none" && o.subprotocol != "mixed")) {
    std::fprintf(stderr, "argument out of range\n");
    usage();
    return 2;
  }

  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  getrlimit(RLIMIT_NOFILE, &rl);
  const long need = std::max(o.clients, o.idle) + 64;
  if (rl.rlim_cur != RLIM_INFINITY && static_cast<long>(rl.rlim_cur) < need) {
    std::fprintf(stderr, "open file limit %ld is below the %ld needed\n",
                 static_cast<long>(rl.rlim_cur), need);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGALRM}) signal(sig, on_fatal_signal);

  out("webrtc-call-server bench: %s\n", o.server.c_str());
  out("(loopback, %ld cores; figures are for this machine, targets are printed, not enforced)\n",
      sysconf(_SC_NPROCESSORS_ONLN));
  bool ok = true;
  if (o.phase == "a" || o.phase == "all") ok = phase_a(o) && ok;
  if (o.phase == "b" || o.phase == "all") ok = phase_b(o) && ok;
  if (o.phase == "c" || o.phase == "all") ok = phase_c(o) && ok;
  out("\n%s\n", ok ? "bench finished" : "bench finished WITH ERRORS (see above)");
  return ok ? 0 : 1;
}
