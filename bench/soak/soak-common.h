// Shared by the soak programs (bench/soak): the server as a child process, resource samples
// of a process from /proc, the figures printed over a series of samples, CSV output, and the
// network namespace the WebRTC peers must run in.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace soak {

// The value of the flag argv[i] (argv[i + 1], and i moves past it); exits 2 when it is missing.
inline std::string flag_value(int& i, int argc, char** argv) {
  if (i + 1 >= argc) {
    std::fprintf(stderr, "%s needs a value\n", argv[i]);
    std::exit(2);
  }
  return argv[++i];
}

inline double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// The server's pid, for the signal handlers (SIGKILL it on the way out).
inline volatile pid_t g_server_pid = 0;

inline void kill_server_and_exit(int sig) {
  if (g_server_pid > 0) kill(g_server_pid, SIGKILL);
  _exit(sig == SIGALRM ? 3 : 128 + sig);
}

// A hard limit on the whole run (SIGALRM), and the server killed on every signal.
inline void install_limits(unsigned timeout_s) {
  struct sigaction sa {};
  sa.sa_handler = kill_server_and_exit;
  for (int sig : {SIGINT, SIGTERM, SIGALRM, SIGSEGV, SIGABRT}) sigaction(sig, &sa, nullptr);
  alarm(timeout_s);
}

// webrtc-call-server on 127.0.0.1 with a free port, stopped (SIGTERM, then SIGKILL) on
// destruction; it dies with us (PR_SET_PDEATHSIG).
class Server {
 public:
  Server(const std::string& path, std::vector<std::string> extra = {}) {
    int out[2];
    if (pipe(out) != 0) return;
    pid_t pid = fork();
    if (pid < 0) return;
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      dup2(out[1], STDOUT_FILENO);
      close(out[0]);
      close(out[1]);
      int null = open("/dev/null", O_WRONLY);
      if (null >= 0) dup2(null, STDERR_FILENO);
      std::vector<std::string> args = {path, "--address", "127.0.0.1", "--port", "0"};
      args.insert(args.end(), extra.begin(), extra.end());
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(path.c_str(), argv.data());
      _exit(127);
    }
    g_server_pid = pid;
    close(out[1]);
    std::string line;
    double deadline = now_s() + 10;
    while (line.find('\n') == std::string::npos && now_s() < deadline) {
      pollfd p{out[0], POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char buf[256];
      ssize_t n = read(out[0], buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, static_cast<std::size_t>(n));
    }
    stdout_ = out[0];  // kept open: a write to a closed pipe would kill it
    const std::string prefix = "Listening on ";
    if (line.rfind(prefix, 0) == 0) {
      http_url_ = line.substr(prefix.size(), line.find_first_of(" \n", prefix.size()) -
                                                 prefix.size());  // http://127.0.0.1:PORT/
      std::string hostport = http_url_.substr(7);
      hostport = hostport.substr(0, hostport.find('/'));
      ws_url_ = "ws://" + hostport + "/ws";
    }
  }
  ~Server() { stop(); }
  void stop() {
    pid_t pid = g_server_pid;
    if (pid > 0) {
      kill(pid, SIGTERM);
      int i = 0;
      while (waitpid(pid, nullptr, WNOHANG) != pid && ++i < 500) usleep(10000);
      if (i >= 500) {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
      }
      g_server_pid = 0;
    }
    if (stdout_ >= 0) close(stdout_);
    stdout_ = -1;
  }
  pid_t pid() const { return g_server_pid; }
  bool alive() const { return g_server_pid > 0 && kill(g_server_pid, 0) == 0; }
  const std::string& ws_url() const { return ws_url_; }
  const std::string& http_url() const { return http_url_; }

 private:
  int stdout_ = -1;
  std::string ws_url_, http_url_;
};

inline int count_dir(const std::string& path) {
  int n = 0;
  if (DIR* d = opendir(path.c_str())) {
    while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
  }
  return n;
}

// One sample of a process (pid 0: this one).
struct Sample {
  double t = 0;  // seconds since the start
  int cycle = 0;
  int threads = 0, fds = 0;
  long rss_kib = 0;
  long heap_kib = -1;  // malloc's bytes in use (mallinfo2), this process only
};

inline Sample sample(pid_t pid, double t0, int cycle) {
  std::string base = pid ? "/proc/" + std::to_string(pid) : std::string("/proc/self");
  Sample s;
  s.t = now_s() - t0;
  s.cycle = cycle;
  s.threads = count_dir(base + "/task");
  s.fds = count_dir(base + "/fd") - (pid ? 0 : 1);  // our own opendir's fd
  std::ifstream f(base + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) s.rss_kib = std::stol(line.substr(6));
  }
  return s;
}

// Least-squares slope of `y` over the cycle number, per 1,000 cycles.
template <typename F>
double slope_per_1000(const std::vector<Sample>& v, F y) {
  if (v.size() < 2) return 0;
  double n = static_cast<double>(v.size()), sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (const Sample& s : v) {
    double x = s.cycle, yy = y(s);
    sx += x;
    sy += yy;
    sxx += x * x;
    sxy += x * yy;
  }
  double d = n * sxx - sx * sx;
  return d == 0 ? 0 : (n * sxy - sx * sy) / d * 1000;
}

// "threads: first 11, last 11, max 14, slope +0.00 per 1,000 cycles" for each figure.
inline void print_series(const char* what, const std::vector<Sample>& v) {
  if (v.empty()) return;
  struct Col {
    const char* name;
    const char* unit;
    double (*get)(const Sample&);
  };
  const Col cols[] = {
      {"threads", "", [](const Sample& s) { return static_cast<double>(s.threads); }},
      {"fds", "", [](const Sample& s) { return static_cast<double>(s.fds); }},
      {"RSS", " KiB", [](const Sample& s) { return static_cast<double>(s.rss_kib); }},
      {"heap", " KiB", [](const Sample& s) { return static_cast<double>(s.heap_kib); }},
  };
  std::printf("%s, %zu samples over %d cycles:\n", what, v.size(), v.back().cycle);
  for (const Col& c : cols) {
    if (c.get(v.front()) < 0) continue;  // not measured
    double mx = 0;
    for (const Sample& s : v) mx = std::max(mx, c.get(s));
    std::printf(
        "  %-8s first %8.0f%s  last %8.0f%s  max %8.0f%s  slope %+9.2f%s per 1,000 cycles\n",
        c.name, c.get(v.front()), c.unit, c.get(v.back()), c.unit, mx, c.unit,
        slope_per_1000(v, c.get), c.unit);
  }
}

inline bool write_csv(const std::string& path, const std::vector<Sample>& v) {
  if (path.empty()) return true;
  FILE* f = std::fopen(path.c_str(), "w");
  if (!f) {
    std::fprintf(stderr, "cannot write %s: %s\n", path.c_str(), std::strerror(errno));
    return false;
  }
  std::fprintf(f, "cycle,seconds,threads,fds,rss_kib,heap_kib\n");
  for (const Sample& s : v) {
    std::fprintf(f, "%d,%.3f,%d,%d,%ld,%ld\n", s.cycle, s.t, s.threads, s.fds, s.rss_kib,
                 s.heap_kib);
  }
  std::fclose(f);
  std::printf("samples written to %s\n", path.c_str());
  return true;
}

// Re-executes this program through tests/netns-run.sh unless it runs in its namespace already
// (WebRTC peers must never see the machine's real interfaces).
inline void ensure_netns(const std::string& netns_run, int argc, char** argv) {
  const char* in = std::getenv("WCC_IN_NETNS");
  if (in && std::strcmp(in, "1") == 0) {
    if (if_nametoindex("wcc0") == 0) {
      std::fprintf(stderr,
                   "WCC_IN_NETNS=1 but there is no wcc0 interface: refusing to run "
                   "WebRTC peers outside tests/netns-run.sh's namespace\n");
      std::exit(1);
    }
    return;
  }
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) {
    std::perror("/proc/self/exe");
    std::exit(1);
  }
  exe[n] = 0;
  std::vector<char*> args = {const_cast<char*>(netns_run.c_str()), exe};
  for (int i = 1; i < argc; ++i) args.push_back(argv[i]);
  args.push_back(nullptr);
  execv(netns_run.c_str(), args.data());
  std::fprintf(stderr, "cannot run %s: %s\n", netns_run.c_str(), std::strerror(errno));
  std::exit(1);
}

}  // namespace soak
