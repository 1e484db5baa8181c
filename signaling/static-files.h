// Serves the web client's files from a folder (GET and HEAD only).
#pragma once

#include <libsoup/soup.h>

#include <string>

namespace signaling {

// Answers `msg` for `path` (the request path) with the file under `root`, 404 when there is
// none, 403 for anything that would leave `root`. "/" serves index.html.
void serve_static_file(SoupServerMessage* msg, const std::string& root, const char* path);

}  // namespace signaling
