// A GIOStream that sits between libsoup's WebSocket connection and the socket.
//
// libsoup 3.2 (Debian 12) checks `max-incoming-payload-size` per frame only: a message sent
// as many small fragments grows in memory without bound. The guard parses the frame headers
// of the incoming byte stream (client to server) and fails the read with SOUP_WEBSOCKET_ERROR
// / SOUP_WEBSOCKET_CLOSE_TOO_BIG once the data frames of one message add up to more than the
// limit, before libsoup buffers them. It also records when bytes last arrived (libsoup 3.2
// sends keepalive pings but never notices a peer that stopped answering) and how many bytes
// are queued for sending but not yet written (libsoup 3.2 has no buffered-amount API).
#pragma once

#include <gio/gio.h>

#include <cstddef>
#include <cstdint>

namespace signaling {

struct FrameGuardStats {
  std::int64_t last_rx_us = 0;      // g_get_monotonic_time() of the last byte read
  std::uint64_t bytes_written = 0;  // bytes the socket accepted
};

// Returns a new stream (transfer full) reading from and writing to `base`.
GIOStream* frame_guard_new(GIOStream* base, std::size_t max_message_bytes);
const FrameGuardStats& frame_guard_stats(GIOStream* guard);

}  // namespace signaling
