// A wcc-viewer child process for tests and benchmarks: started (in the viewers' namespace
// with `$WCC_VIEWERS_EXEC`), its JSON lines read by a thread of its own into events, killed
// or stopped. Header only; needs json-glib.
//   test::ViewerProcess v({"--server", url, "--name", "v", "--count", "9", "--call", "cam"});
//   v.wait([&] { return v.count("first-frame") == 9; }, 30000);
#pragma once

#include "../wait-until.h"

#include <json-glib/json-glib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace test {

struct ViewerEvent {
  std::string viewer, event;
  std::chrono::steady_clock::time_point received;
  std::map<std::string, std::string> strings;  // string fields, and booleans as "true"/"false"
  std::map<std::string, double> numbers;
  double num(const std::string& k, double fallback = -1) const {
    auto it = numbers.find(k);
    return it == numbers.end() ? fallback : it->second;
  }
  std::string str(const std::string& k) const {
    auto it = strings.find(k);
    return it == strings.end() ? "" : it->second;
  }
};

class ViewerProcess {
 public:
  // `args` after the program; WCC_VIEWER names the program, WCC_VIEWERS_EXEC (if set) is put
  // in front (ip netns exec NS).
  explicit ViewerProcess(std::vector<std::string> args) {
    std::vector<std::string> argv;
    if (const char* exec = std::getenv("WCC_VIEWERS_EXEC")) {
      std::istringstream words(exec);
      for (std::string w; words >> w;) argv.push_back(w);
    }
    const char* program = std::getenv("WCC_VIEWER");
    argv.push_back(program ? program : "wcc-viewer");
    argv.insert(argv.end(), args.begin(), args.end());
    int out[2];
    if (pipe(out) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      close(out[0]);
      close(out[1]);
      std::vector<char*> cargv;
      for (auto& a : argv) cargv.push_back(a.data());
      cargv.push_back(nullptr);
      execvp(cargv[0], cargv.data());
      _exit(127);
    }
    close(out[1]);
    reader_ = std::thread([this, fd = out[0]] { read_lines(fd); });
  }
  ~ViewerProcess() {
    stop(SIGKILL);
    if (reader_.joinable()) reader_.join();
  }
  ViewerProcess(const ViewerProcess&) = delete;
  ViewerProcess& operator=(const ViewerProcess&) = delete;

  pid_t pid() const { return pid_; }
  // Sends `signal` and waits for the exit; returns the exit status (waitpid's) or -1.
  int stop(int signal = SIGTERM) {
    if (pid_ <= 0) return status_;
    kill(pid_, signal);
    waitpid(pid_, &status_, 0);
    pid_ = -1;
    return status_;
  }

  std::vector<ViewerEvent> events() const {
    std::lock_guard lock(mutex_);
    return events_;
  }
  int count(const std::string& event, const std::string& viewer = "") const {
    std::lock_guard lock(mutex_);
    int n = 0;
    for (const auto& e : events_) n += e.event == event && (viewer.empty() || e.viewer == viewer);
    return n;
  }
  // Waits until `pred` holds (checked on every line and every 50 ms).
  bool wait(std::function<bool()> pred, int timeout_ms) {
    std::unique_lock lock(mutex_);
    return wait_until_locked(lock, cond_, pred, timeout_ms, 50);
  }
  bool eof() const {
    std::lock_guard lock(mutex_);
    return eof_;
  }

 private:
  void read_lines(int fd) {
    FILE* f = fdopen(fd, "r");
    char* line = nullptr;
    size_t cap = 0;
    while (f && getline(&line, &cap, f) > 0) {
      std::fputs(line, stderr);  // in the test log
      ViewerEvent e;
      e.received = std::chrono::steady_clock::now();
      JsonParser* parser = json_parser_new();
      if (json_parser_load_from_data(parser, line, -1, nullptr) &&
          JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser))) {
        JsonObject* o = json_node_get_object(json_parser_get_root(parser));
        GList* members = json_object_get_members(o);
        for (GList* m = members; m; m = m->next) {
          const char* k = static_cast<const char*>(m->data);
          JsonNode* n = json_object_get_member(o, k);
          if (!JSON_NODE_HOLDS_VALUE(n)) continue;
          GType t = json_node_get_value_type(n);
          if (t == G_TYPE_STRING) {
            e.strings[k] = json_node_get_string(n);
          } else if (t == G_TYPE_BOOLEAN) {
            e.strings[k] = json_node_get_boolean(n) ? "true" : "false";
          } else {
            e.numbers[k] = json_node_get_double(n);
          }
        }
        g_list_free(members);
        e.viewer = e.str("viewer");
        e.event = e.str("event");
        std::lock_guard lock(mutex_);
        events_.push_back(std::move(e));
        cond_.notify_all();
      }
      g_object_unref(parser);
    }
    free(line);
    if (f) fclose(f);
    std::lock_guard lock(mutex_);
    eof_ = true;
    cond_.notify_all();
  }

  pid_t pid_ = -1;
  int status_ = -1;
  std::thread reader_;
  mutable std::mutex mutex_;
  std::condition_variable cond_;
  std::vector<ViewerEvent> events_;
  bool eof_ = false;
};

}  // namespace test
