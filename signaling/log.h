// Structured logging for the server: GLib structured logging with our own fields, written
// as one logfmt line per event on stderr (or to the journal when stderr is the journal).
#pragma once

#include <cstdint>
#include <string_view>

namespace signaling::log {

// Installs the logfmt writer as the process's GLib log writer.
void install_writer();

// One line per connection event: event=..., conn=..., peer=..., detail=...
void connection_event(std::string_view event, std::uint64_t conn, std::string_view peer,
                      std::string_view detail);
// A server-wide event (listening, shutting down, ...).
void server_event(std::string_view event, std::string_view detail);

}  // namespace signaling::log
