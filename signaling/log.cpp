#include "log.h"

#include <glib.h>

#include <cstdio>
#include <string>

namespace signaling::log {

namespace {

constexpr const char* kDomain = "webrtc-call-server";

const char* level_name(GLogLevelFlags level) {
  if (level & G_LOG_LEVEL_ERROR) return "error";
  if (level & G_LOG_LEVEL_CRITICAL) return "critical";
  if (level & G_LOG_LEVEL_WARNING) return "warning";
  if (level & G_LOG_LEVEL_MESSAGE) return "notice";
  if (level & G_LOG_LEVEL_INFO) return "info";
  return "debug";
}

// logfmt value: bare when simple, quoted and escaped otherwise.
void append_value(std::string& out, std::string_view v) {
  bool bare = !v.empty();
  for (char c : v) {
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || static_cast<unsigned char>(c) >= 0x7f) {
      bare = false;
      break;
    }
  }
  if (bare) {
    out += v;
    return;
  }
  out += '"';
  for (char c : v) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
}

GLogWriterOutput write_logfmt(GLogLevelFlags level, const GLogField* fields, gsize n_fields,
                              gpointer) {
  const char* domain = nullptr;
  for (gsize i = 0; i < n_fields; ++i) {
    if (g_strcmp0(fields[i].key, "GLIB_DOMAIN") == 0)
      domain = static_cast<const char*>(fields[i].value);
  }
  // Debug output from GLib and libsoup follows G_MESSAGES_DEBUG as usual. Checked first:
  // libsoup logs every frame at debug level, so this runs for every relayed message.
  if ((level & (G_LOG_LEVEL_DEBUG | G_LOG_LEVEL_INFO)) &&
      !(domain && g_str_equal(domain, kDomain))) {
    if (g_log_writer_default_would_drop(level, domain)) return G_LOG_WRITER_HANDLED;
  }
  // Whether stderr is the journal does not change while we run (it costs a syscall).
  static const bool journald = g_log_writer_is_journald(fileno(stderr));
  if (journald) return g_log_writer_journald(level, fields, n_fields, nullptr);
  GDateTime* now = g_date_time_new_now_utc();
  char* ts = g_date_time_format_iso8601(now);
  g_date_time_unref(now);
  std::string line = "ts=";
  line += ts;
  g_free(ts);
  line += " level=";
  line += level_name(level);
  for (gsize i = 0; i < n_fields; ++i) {
    const char* key = fields[i].key;
    if (g_str_equal(key, "PRIORITY") || g_str_equal(key, "GLIB_DOMAIN") ||
        g_str_equal(key, "CODE_FILE") || g_str_equal(key, "CODE_LINE") ||
        g_str_equal(key, "CODE_FUNC") || g_str_equal(key, "MESSAGE") ||
        g_str_has_prefix(key, "GLIB_OLD_LOG")) {
      continue;
    }
    std::string_view value = fields[i].length < 0
                                 ? std::string_view(static_cast<const char*>(fields[i].value))
                                 : std::string_view(static_cast<const char*>(fields[i].value),
                                                    static_cast<std::size_t>(fields[i].length));
    if (value.empty()) continue;
    line += ' ';
    for (const char* k = key; *k; ++k) line += static_cast<char>(g_ascii_tolower(*k));
    line += '=';
    append_value(line, value);
  }
  const char* event = nullptr;
  for (gsize i = 0; i < n_fields; ++i) {
    if (g_str_equal(fields[i].key, "EVENT")) event = static_cast<const char*>(fields[i].value);
  }
  for (gsize i = 0; i < n_fields; ++i) {
    if (g_str_equal(fields[i].key, "MESSAGE") &&
        g_strcmp0(event, static_cast<const char*>(fields[i].value)) != 0) {
      line += " msg=";
      append_value(line, static_cast<const char*>(fields[i].value));
    }
  }
  if (domain && !g_str_equal(domain, kDomain)) {
    line += " domain=";
    append_value(line, domain);
  }
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
  return G_LOG_WRITER_HANDLED;
}

}  // namespace

void install_writer() {
  g_log_set_writer_func(write_logfmt, nullptr, nullptr);
}

void connection_event(std::string_view event, std::uint64_t conn, std::string_view peer,
                      std::string_view detail) {
  std::string ev(event), cid = std::to_string(conn), pe(peer), de(detail);
  const GLogField fields[] = {
      {"GLIB_DOMAIN", kDomain, -1}, {"PRIORITY", "6", -1},    {"EVENT", ev.c_str(), -1},
      {"CONN", cid.c_str(), -1},    {"PEER", pe.c_str(), -1}, {"DETAIL", de.c_str(), -1},
      {"MESSAGE", ev.c_str(), -1},
  };
  g_log_structured_array(G_LOG_LEVEL_INFO, fields, G_N_ELEMENTS(fields));
}

void server_event(std::string_view event, std::string_view detail) {
  std::string ev(event), de(detail);
  const GLogField fields[] = {
      {"GLIB_DOMAIN", kDomain, -1},
      {"PRIORITY", "5", -1},
      {"EVENT", ev.c_str(), -1},
      {"MESSAGE", de.c_str(), -1},
  };
  g_log_structured_array(G_LOG_LEVEL_MESSAGE, fields, G_N_ELEMENTS(fields));
}

}  // namespace signaling::log
