// main() for the fuzz targets when there is no libFuzzer (the gcc build, the ASan build): a
// bounded, reproducible run that `meson test --suite fuzz` does on every build.
//
//   TARGET [-iterations=N] [-dict=FILE] [-max_len=N] [-seed=N] PATH...
//
// Every file under each PATH (a file or a directory, read in name order; a PATH ending in /
// is a directory that may be missing) is fed to
// LLVMFuzzerTestOneInput once: the regression inputs and the seed corpus. Then N inputs
// mutated from them (bit flips, bytes, dictionary tokens, spans deleted or repeated, other
// inputs spliced in) are fed, from a fixed seed: the same inputs on every run, and the run
// stops by itself. A target with a better generator of its own defines fuzz_bounded_run(),
// which then replaces the mutation loop.
//
// The dictionary is libFuzzer's format: one "token" per line, optionally `name=` before it,
// with \\, \" and \xNN escapes; lines starting with # are comments.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "driver.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Returns false on a line that is not a token (the dictionary is then refused).
bool parse_token(std::string_view line, std::string* out) {
  std::size_t open = line.find('"');
  if (open == std::string_view::npos || line.size() < open + 2 || line.back() != '"') return false;
  std::string_view body = line.substr(open + 1, line.size() - open - 2);
  out->clear();
  for (std::size_t i = 0; i < body.size(); ++i) {
    if (body[i] != '\\') {
      out->push_back(body[i]);
      continue;
    }
    if (++i == body.size()) return false;
    if (body[i] == 'x') {
      const int hi = i + 2 < body.size() ? hex(body[i + 1]) : -1;
      const int lo = i + 2 < body.size() ? hex(body[i + 2]) : -1;
      if (hi < 0 || lo < 0) return false;
      out->push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out->push_back(body[i]);  // \\ and \"
    }
  }
  return true;
}

std::vector<std::string> read_dict(const std::string& path) {
  std::ifstream f(path);
  if (!f) {
    std::fprintf(stderr, "cannot read the dictionary %s\n", path.c_str());
    std::exit(2);
  }
  std::vector<std::string> tokens;
  std::string line;
  int n = 0;
  while (std::getline(f, line)) {
    ++n;
    while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.pop_back();
    std::size_t start = line.find_first_not_of(' ');
    if (start == std::string::npos || line[start] == '#') continue;
    std::string token;
    if (!parse_token(std::string_view(line).substr(start), &token)) {
      std::fprintf(stderr, "%s:%d: not a dictionary entry\n", path.c_str(), n);
      std::exit(2);
    }
    tokens.push_back(std::move(token));
  }
  return tokens;
}

std::string mutate(std::string s, std::mt19937_64& rng, const std::vector<std::string>& inputs,
                   const std::vector<std::string>& dict, std::size_t max_len) {
  const int rounds = 1 + static_cast<int>(rng() % 6);
  for (int r = 0; r < rounds; ++r) {
    const std::size_t pos = rng() % (s.size() + 1);
    switch (rng() % 9) {
      case 0:  // flip a bit
        if (!s.empty()) s[rng() % s.size()] ^= static_cast<char>(1u << (rng() % 8));
        break;
      case 1:  // set a byte
        if (!s.empty()) s[rng() % s.size()] = static_cast<char>(rng());
        break;
      case 2:  // insert a few bytes
        for (std::size_t n = 1 + rng() % 4; n > 0; --n) s.insert(pos, 1, static_cast<char>(rng()));
        break;
      case 3:
      case 4:  // insert or overwrite with a dictionary token
        if (!dict.empty()) {
          const std::string& t = dict[rng() % dict.size()];
          if (rng() % 2) {
            s.insert(pos, t);
          } else {
            s.replace(pos, std::min(t.size(), s.size() - pos), t);
          }
        }
        break;
      case 5:  // delete a span
        s.erase(pos, 1 + rng() % (rng() % 4 ? 8 : 256));
        break;
      case 6:  // repeat a span (deeper nesting, longer lists)
        if (!s.empty()) s.insert(pos, s.substr(rng() % s.size(), rng() % 64));
        break;
      case 7: {  // splice in part of another input
        const std::string& o = inputs[rng() % inputs.size()];
        const std::size_t from = o.empty() ? 0 : rng() % o.size();
        s.insert(pos, o.substr(from, rng() % 4 ? std::string::npos : rng() % 128));
        break;
      }
      case 8:  // cut the end off
        s.resize(pos);
        break;
    }
  }
  if (s.size() > max_len) s.resize(max_len);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  long iterations = 10000;
  std::size_t max_len = 64 * 1024;
  std::uint64_t seed = 20261124;
  std::vector<std::string> dict;
  std::vector<std::filesystem::path> files;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&](std::string_view flag) { return std::string(a.substr(flag.size())); };
    if (a.starts_with("-iterations=")) {
      iterations = std::atol(value("-iterations=").c_str());
    } else if (a.starts_with("-dict=")) {
      dict = read_dict(value("-dict="));
    } else if (a.starts_with("-max_len=")) {
      max_len = static_cast<std::size_t>(std::atol(value("-max_len=").c_str()));
    } else if (a.starts_with("-seed=")) {
      seed = std::strtoull(value("-seed=").c_str(), nullptr, 10);
    } else if (a.starts_with("-")) {
      std::fprintf(stderr,
                   "unknown flag %s\nusage: %s [-iterations=N] [-dict=FILE] "
                   "[-max_len=N] [-seed=N] PATH...\n",
                   argv[i], argv[0]);
      return 2;
    } else if (std::filesystem::is_directory(a)) {
      std::vector<std::filesystem::path> in_dir;
      for (const auto& e : std::filesystem::recursive_directory_iterator(a)) {
        if (e.is_regular_file()) in_dir.push_back(e.path());
      }
      std::sort(in_dir.begin(), in_dir.end());
      files.insert(files.end(), in_dir.begin(), in_dir.end());
    } else if (std::filesystem::is_regular_file(a)) {
      files.emplace_back(a);
    } else if (a.ends_with("/")) {
      std::fprintf(stderr, "no directory %s: skipped\n", argv[i]);
    } else {
      std::fprintf(stderr, "no such file or directory: %s\n", argv[i]);
      return 2;
    }
  }

  std::vector<std::string> inputs;
  for (const auto& path : files) {
    inputs.push_back(read_file(path));
    // Named first, so that a crash says which file it was.
    std::fprintf(stderr, "replaying %s\n", path.c_str());
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(inputs.back().data()),
                           inputs.back().size());
  }
  std::printf("%zu inputs replayed\n", inputs.size());

  if (fuzz_bounded_run) {
    fuzz_bounded_run(iterations, inputs);
    return 0;
  }
  if (inputs.empty()) inputs.emplace_back();
  std::mt19937_64 rng(seed);
  for (long i = 0; i < iterations; ++i) {
    std::string input = mutate(inputs[rng() % inputs.size()], rng, inputs, dict, max_len);
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
  }
  std::printf("%ld mutated inputs (seed %llu, %zu dictionary tokens): no crash\n", iterations,
              static_cast<unsigned long long>(seed), dict.size());
  return 0;
}
