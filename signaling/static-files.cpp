#include "static-files.h"

#include <climits>
#include <cstdlib>
#include <string_view>

#include "gref.h"

namespace signaling {

namespace {

const char* content_type(std::string_view path) {
  struct Type {
    std::string_view ext;
    const char* mime;
  };
  static constexpr Type kTypes[] = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".txt", "text/plain; charset=utf-8"},
  };
  for (const Type& t : kTypes) {
    if (path.ends_with(t.ext)) return t.mime;
  }
  return "application/octet-stream";
}

void respond_status(SoupServerMessage* msg, guint status) {
  const char* phrase = soup_status_get_phrase(status);
  std::string body = std::to_string(status) + " " + (phrase ? phrase : "") + "\n";
  soup_server_message_set_status(msg, status, nullptr);
  soup_server_message_set_response(msg, "text/plain; charset=utf-8", SOUP_MEMORY_COPY, body.data(),
                                   body.size());
}

}  // namespace

void serve_static_file(SoupServerMessage* msg, const std::string& root, const char* path) {
  const char* method = soup_server_message_get_method(msg);
  if (method != SOUP_METHOD_GET && method != SOUP_METHOD_HEAD) {
    soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Allow",
                                 "GET, HEAD");
    respond_status(msg, SOUP_STATUS_METHOD_NOT_ALLOWED);
    return;
  }
  std::string rel = path;
  if (rel.empty() || rel.back() == '/') rel += "index.html";
  // Any "." or ".." segment, backslash or NUL is refused outright.
  gwc::GCharPtr decoded(g_uri_unescape_string(rel.c_str(), nullptr));
  if (!decoded) {
    respond_status(msg, SOUP_STATUS_BAD_REQUEST);
    return;
  }
  std::string_view p(decoded.get());
  if (p.find("/../") != std::string_view::npos || p.ends_with("/..") ||
      p.find("/./") != std::string_view::npos || p.find('\\') != std::string_view::npos ||
      p.find("//") != std::string_view::npos) {
    respond_status(msg, SOUP_STATUS_FORBIDDEN);
    return;
  }
  std::string file = root + std::string(p);
  // The resolved file must still be inside the resolved root (no symlink escapes).
  char real_root[PATH_MAX], real_file[PATH_MAX];
  if (!realpath(root.c_str(), real_root) || !realpath(file.c_str(), real_file) ||
      !g_file_test(real_file, G_FILE_TEST_IS_REGULAR)) {
    respond_status(msg, SOUP_STATUS_NOT_FOUND);
    return;
  }
  std::string_view rr(real_root), rf(real_file);
  if (!rf.starts_with(rr) || (rf.size() > rr.size() && rf[rr.size()] != '/')) {
    respond_status(msg, SOUP_STATUS_FORBIDDEN);
    return;
  }
  char* contents = nullptr;
  gsize length = 0;
  if (!g_file_get_contents(real_file, &contents, &length, nullptr)) {
    respond_status(msg, SOUP_STATUS_NOT_FOUND);
    return;
  }
  SoupMessageHeaders* headers = soup_server_message_get_response_headers(msg);
  soup_message_headers_replace(headers, "Cache-Control", "no-cache");
  soup_message_headers_replace(headers, "X-Content-Type-Options", "nosniff");
  soup_message_headers_replace(headers, "Content-Security-Policy", "frame-ancestors 'none'");
  soup_server_message_set_status(msg, SOUP_STATUS_OK, nullptr);
  soup_server_message_set_response(msg, content_type(real_file), SOUP_MEMORY_TAKE, contents,
                                   length);
}

}  // namespace signaling
