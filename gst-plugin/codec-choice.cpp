#include "codec-choice.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <optional>

namespace webrtccall {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// The lines of `sdp`, without their line ends (CRLF or LF).
std::vector<std::string_view> lines_of(std::string_view sdp) {
  std::vector<std::string_view> out;
  while (!sdp.empty()) {
    std::size_t nl = sdp.find('\n');
    std::string_view line = sdp.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    out.push_back(line);
    if (nl == std::string_view::npos) break;
    sdp.remove_prefix(nl + 1);
  }
  return out;
}

std::optional<int> parse_int(std::string_view s) {
  if (s.empty() || s.size() > 9) return std::nullopt;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

// "a=<key>:<value>" or "a=<key>": the value after the colon when the key matches.
std::optional<std::string_view> attribute(std::string_view line, std::string_view key) {
  if (line.size() < 2 + key.size() || line.substr(0, 2) != "a=" ||
      line.substr(2, key.size()) != key)
    return std::nullopt;
  std::string_view rest = line.substr(2 + key.size());
  if (rest.empty()) return rest;
  if (rest[0] != ':') return std::nullopt;
  return rest.substr(1);
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const std::string& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

std::vector<SdpMedia> sdp_media(std::string_view sdp) {
  std::vector<SdpMedia> out;
  for (std::string_view line : lines_of(sdp)) {
    if (line.substr(0, 2) == "m=") {
      // m=<kind> <port>[/<n>] <proto> <fmt> ...
      SdpMedia m;
      std::vector<std::string_view> words;
      std::string_view rest = line.substr(2);
      while (!rest.empty()) {
        std::size_t sp = rest.find(' ');
        if (sp != 0) words.push_back(rest.substr(0, sp));
        if (sp == std::string_view::npos) break;
        rest.remove_prefix(sp + 1);
      }
      if (!words.empty()) m.kind = words[0];
      if (words.size() > 1) {
        m.port =
            static_cast<unsigned>(parse_int(words[1].substr(0, words[1].find('/'))).value_or(0));
      }
      for (std::size_t i = 3; i < words.size(); ++i) {
        if (auto pt = parse_int(words[i])) m.formats.push_back({*pt, "", ""});
      }
      out.push_back(std::move(m));
      continue;
    }
    if (out.empty()) continue;
    SdpMedia& m = out.back();
    if (attribute(line, "bundle-only")) {
      m.bundle_only = true;
    } else if (auto rtpmap = attribute(line, "rtpmap")) {
      std::size_t sp = rtpmap->find(' ');
      auto pt = parse_int(rtpmap->substr(0, sp));
      if (!pt || sp == std::string_view::npos) continue;
      std::string_view name = rtpmap->substr(sp + 1);
      name = name.substr(0, name.find('/'));
      for (SdpFormat& f : m.formats) {
        if (f.pt == *pt) f.encoding = name;
      }
    } else if (auto fmtp = attribute(line, "fmtp")) {
      std::size_t sp = fmtp->find(' ');
      auto pt = parse_int(fmtp->substr(0, sp));
      if (!pt || sp == std::string_view::npos) continue;
      for (SdpFormat& f : m.formats) {
        if (f.pt == *pt) f.fmtp = fmtp->substr(sp + 1);
      }
    }
  }
  return out;
}

bool format_sendable(const SdpFormat& f) {
  if (!iequals(f.encoding, "H264")) return !f.encoding.empty();
  bool mode1 = false, baseline = false;
  std::string_view params = f.fmtp;
  while (!params.empty()) {
    std::size_t semi = params.find(';');
    std::string_view p = params.substr(0, semi);
    while (!p.empty() && p.front() == ' ') p.remove_prefix(1);
    std::size_t eq = p.find('=');
    if (eq != std::string_view::npos) {
      std::string_view key = p.substr(0, eq), value = p.substr(eq + 1);
      if (iequals(key, "packetization-mode")) mode1 = value == "1";
      // 42: Baseline, with constraint flags that make it Constrained Baseline in practice
      // (42e0, 42c0, 4200 are all offered by browsers for what openh264 produces).
      if (iequals(key, "profile-level-id"))
        baseline = value.size() == 6 && iequals(value.substr(0, 2), "42");
    }
    if (semi == std::string_view::npos) break;
    params.remove_prefix(semi + 1);
  }
  return mode1 && baseline;
}

CodecChoice choose_codec(const std::vector<std::string>& producible, const std::string& configured,
                         const std::vector<SdpFormat>& remote) {
  auto produced = [&](const std::string& e) {
    return std::any_of(producible.begin(), producible.end(),
                       [&](const std::string& p) { return iequals(p, e); });
  };
  auto canonical = [&](const std::string& e) {
    for (const std::string& p : producible) {
      if (iequals(p, e)) return p;
    }
    return e;
  };
  CodecChoice c;
  bool configured_producible = produced(configured);
  if (configured_producible) {
    for (const SdpFormat& f : remote) {
      if (iequals(f.encoding, configured) && format_sendable(f)) {
        c.encoding = canonical(f.encoding);
        c.pt = f.pt;
        return c;
      }
    }
  }
  for (const SdpFormat& f : remote) {
    if (produced(f.encoding) && format_sendable(f)) {
      c.encoding = canonical(f.encoding);
      c.pt = f.pt;
      c.reason = configured.empty() ? "" : configured + " not offered: sending " + c.encoding;
      if (!configured_producible && !configured.empty()) {
        c.reason = "cannot produce " + configured + ": sending " + c.encoding;
      }
      return c;
    }
  }
  // What the remote offers, without the formats that are not codecs of their own.
  std::vector<std::string> names;
  for (const SdpFormat& f : remote) {
    if (f.encoding.empty() || iequals(f.encoding, "rtx") || iequals(f.encoding, "red") ||
        iequals(f.encoding, "ulpfec") || iequals(f.encoding, "flexfec-03") ||
        iequals(f.encoding, "telephone-event") || iequals(f.encoding, "CN")) {
      continue;
    }
    std::string n = f.encoding;
    if (iequals(n, "H264") && !format_sendable(f)) n += " (not constrained baseline, mode 1)";
    if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
  }
  c.reason = "no common codec: remote offers " + (names.empty() ? "none" : join(names)) +
             "; we produce " + (producible.empty() ? "none" : join(producible));
  return c;
}

std::vector<std::string> offer_order(const std::vector<std::string>& producible,
                                     const std::string& configured) {
  std::vector<std::string> out;
  for (const std::string& p : producible) {
    if (iequals(p, configured)) out.push_back(p);
  }
  for (const std::string& p : producible) {
    if (!iequals(p, configured)) out.push_back(p);
  }
  return out;
}

std::string mend_rejected_mlines(std::string_view sdp, std::vector<unsigned>* mended) {
  std::vector<std::string_view> lines = lines_of(sdp);
  const std::string eol = sdp.find("\r\n") != std::string_view::npos ? "\r\n" : "\n";
  const char* keys[] = {"ice-ufrag", "ice-pwd", "setup"};
  // What a line lacking them takes: the session's, or the first m-line's that has them.
  std::optional<std::string_view> session[3], source[3];
  struct Section {
    std::size_t begin, end;  // lines [begin, end)
    bool rejected;
    bool has[3];
  };
  std::vector<Section> sections;
  std::vector<SdpMedia> media = sdp_media(sdp);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].substr(0, 2) == "m=") {
      if (!sections.empty()) sections.back().end = i;
      std::size_t n = sections.size();
      sections.push_back({i, lines.size(), n < media.size() && rejected(media[n]), {}});
      continue;
    }
    for (int k = 0; k < 3; ++k) {
      auto v = attribute(lines[i], keys[k]);
      if (!v || v->empty()) continue;
      if (sections.empty()) {
        session[k] = v;
      } else {
        sections.back().has[k] = true;
        if (!source[k] && !sections.back().rejected) source[k] = v;
      }
    }
  }
  std::vector<unsigned> changed;
  std::string out;
  out.reserve(sdp.size() + 256);
  std::size_t next_section = 0;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (i + 1 == lines.size() && lines[i].empty()) break;  // the text's final line end
    out.append(lines[i]).append(eol);
    if (next_section >= sections.size() || sections[next_section].begin != i) continue;
    const Section& s = sections[next_section];
    unsigned index = static_cast<unsigned>(next_section++);
    if (!s.rejected) continue;
    // After the m= line and its c=/b= lines, before the attributes.
    std::size_t j = i + 1;
    for (; j < s.end && lines[j].substr(0, 2) != "a="; ++j) out.append(lines[j]).append(eol);
    bool any = false;
    for (int k = 0; k < 3; ++k) {
      if (s.has[k] || session[k]) continue;
      if (!source[k]) continue;
      out.append("a=").append(keys[k]).append(":").append(*source[k]).append(eol);
      any = true;
    }
    if (any) changed.push_back(index);
    i = j - 1;
  }
  if (mended) *mended = changed;
  if (changed.empty()) return std::string(sdp);
  return out;
}

}  // namespace webrtccall
