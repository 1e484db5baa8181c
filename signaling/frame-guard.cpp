#include "frame-guard.h"

#include <libsoup/soup.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <utility>

// GObject boilerplate below is C at the GObject boundary: three small types, each delegating
// to the wrapped stream. No exception can cross these functions (nothing here throws).

namespace {

using signaling::FrameGuardStats;

// Browsers send no pings and libsoup sends one per keepalive interval.
constexpr unsigned kMaxPingsPerSecond = 10;
// Bytes read from one connection before the others get their turn: libsoup 3.2 reads until
// the socket is drained, so one fast sender could hold the main loop.
constexpr gssize kReadBudget = 64 * 1024;

// ---- Incoming frame parser ----

struct FrameParser {
  std::size_t max_message_bytes = 0;
  unsigned char header[14] = {};
  std::size_t header_have = 0;
  std::uint64_t payload_left = 0;
  std::uint64_t message_bytes = 0;  // data bytes of the message being received so far
  bool in_payload = false;
  // Pings in the current one-second window: each costs a pong the peer may never read.
  gint64 ping_window_start_us = 0;
  unsigned pings_in_window = 0;
  bool ping_flood = false;

  static std::size_t header_size(const unsigned char* h, std::size_t have) {
    if (have < 2) return 2;
    std::size_t size = 2;
    unsigned len7 = h[1] & 0x7f;
    if (len7 == 126) size += 2;
    if (len7 == 127) size += 8;
    if (h[1] & 0x80) size += 4;  // mask
    return size;
  }

  // Feeds bytes. Returns the offset in `data` of the header of the first frame that takes a
  // message over the limit, or -1 when all is well.
  gssize feed(const unsigned char* data, std::size_t len, std::size_t* header_start_out) {
    std::size_t i = 0;
    while (i < len) {
      if (in_payload) {
        std::size_t take = static_cast<std::size_t>(
            std::min<std::uint64_t>(payload_left, static_cast<std::uint64_t>(len - i)));
        payload_left -= take;
        i += take;
        if (payload_left == 0) in_payload = false;
        continue;
      }
      std::size_t header_start = i >= header_have ? i - header_have : 0;
      // Collect the header byte by byte (it is at most 14 bytes).
      while (i < len && header_have < header_size(header, header_have)) {
        header[header_have++] = data[i++];
      }
      if (header_have < header_size(header, header_have)) break;  // need more bytes

      unsigned opcode = header[0] & 0x0f;
      bool fin = (header[0] & 0x80) != 0;
      unsigned len7 = header[1] & 0x7f;
      std::uint64_t payload = len7;
      if (len7 == 126) {
        payload = (std::uint64_t{header[2]} << 8) | header[3];
      } else if (len7 == 127) {
        payload = 0;
        for (int b = 2; b < 10; ++b) payload = (payload << 8) | header[b];
      }
      header_have = 0;

      if (opcode == 0x9) {
        gint64 now = g_get_monotonic_time();
        if (now - ping_window_start_us > G_USEC_PER_SEC) {
          ping_window_start_us = now;
          pings_in_window = 0;
        }
        if (++pings_in_window > kMaxPingsPerSecond) {
          ping_flood = true;
          *header_start_out = header_start;
          return static_cast<gssize>(header_start);
        }
      }
      if (opcode < 0x8) {  // data or continuation frame
        if (opcode != 0) message_bytes = 0;
        message_bytes += payload;
        if (message_bytes > max_message_bytes) {
          *header_start_out = header_start;
          return static_cast<gssize>(header_start);
        }
        if (fin) message_bytes = 0;
      }
      payload_left = payload;
      in_payload = payload > 0;
    }
    return -1;
  }
};

// ---- Guard input stream ----

struct GuardInput {
  GInputStream parent;
  GInputStream* base;
  FrameParser parser;
  FrameGuardStats* stats;
  GError* pending_error;  // over the limit: returned by the next read
  gssize budget;          // bytes left to read before yielding to the main loop
};
struct GuardInputClass {
  GInputStreamClass parent_class;
};

GType guard_input_get_type();
void guard_input_pollable_init(GPollableInputStreamInterface* iface);

G_DEFINE_TYPE_WITH_CODE(GuardInput, guard_input, G_TYPE_INPUT_STREAM,
                        G_IMPLEMENT_INTERFACE(G_TYPE_POLLABLE_INPUT_STREAM,
                                              guard_input_pollable_init))

GuardInput* as_input(gpointer p) {
  return reinterpret_cast<GuardInput*>(p);
}

void set_refused(GuardInput* self) {
  g_clear_error(&self->pending_error);
  if (self->parser.ping_flood) {
    self->pending_error = g_error_new(SOUP_WEBSOCKET_ERROR, SOUP_WEBSOCKET_CLOSE_POLICY_VIOLATION,
                                      "more than %u pings per second", kMaxPingsPerSecond);
  } else {
    self->pending_error = g_error_new(SOUP_WEBSOCKET_ERROR, SOUP_WEBSOCKET_CLOSE_TOO_BIG,
                                      "message is over the limit of %" G_GSIZE_FORMAT " bytes",
                                      self->parser.max_message_bytes);
  }
}

// Scans what was just read; trims the count to what precedes an oversized frame.
gssize inspect(GuardInput* self, void* buffer, gssize count, GError** error) {
  if (count <= 0) return count;
  self->stats->last_rx_us = g_get_monotonic_time();
  std::size_t header_start = 0;
  gssize bad = self->parser.feed(static_cast<const unsigned char*>(buffer),
                                 static_cast<std::size_t>(count), &header_start);
  if (bad < 0) return count;
  set_refused(self);
  if (bad > 0) return bad;  // deliver the complete frames before it; fail the next read
  g_propagate_error(error, std::exchange(self->pending_error, nullptr));
  return -1;
}

gssize guard_input_read(GInputStream* stream, void* buffer, gsize count, GCancellable* cancellable,
                        GError** error) {
  GuardInput* self = as_input(stream);
  if (self->pending_error) {
    g_propagate_error(error, std::exchange(self->pending_error, nullptr));
    return -1;
  }
  gssize n = g_input_stream_read(self->base, buffer, count, cancellable, error);
  return inspect(self, buffer, n, error);
}

gboolean guard_input_close(GInputStream*, GCancellable*, GError**) {
  return TRUE;  // the base is closed with the GIOStream
}

gboolean guard_input_can_poll(GPollableInputStream* stream) {
  return g_pollable_input_stream_can_poll(G_POLLABLE_INPUT_STREAM(as_input(stream)->base));
}

gboolean guard_input_is_readable(GPollableInputStream* stream) {
  GuardInput* self = as_input(stream);
  return self->pending_error != nullptr ||
         g_pollable_input_stream_is_readable(G_POLLABLE_INPUT_STREAM(self->base));
}

GSource* guard_input_create_source(GPollableInputStream* stream, GCancellable* cancellable) {
  GuardInput* self = as_input(stream);
  GSource* base_source =
      g_pollable_input_stream_create_source(G_POLLABLE_INPUT_STREAM(self->base), cancellable);
  GSource* source = g_pollable_source_new_full(stream, base_source, cancellable);
  g_source_unref(base_source);
  if (self->pending_error) g_source_set_ready_time(source, 0);  // fire at once
  self->budget = kReadBudget;  // libsoup re-arms its source after each drained read
  return source;
}

gssize guard_input_read_nonblocking(GPollableInputStream* stream, void* buffer, gsize count,
                                    GError** error) {
  GuardInput* self = as_input(stream);
  if (self->pending_error) {
    g_propagate_error(error, std::exchange(self->pending_error, nullptr));
    return -1;
  }
  if (self->budget <= 0) {
    // Our turn is over: pretend the socket is drained; libsoup re-arms its source and the
    // main loop serves the other connections first.
    g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK, "read budget used");
    return -1;
  }
  gsize want = std::min(count, static_cast<gsize>(self->budget));
  gssize n = g_pollable_input_stream_read_nonblocking(G_POLLABLE_INPUT_STREAM(self->base), buffer,
                                                      want, nullptr, error);
  if (n > 0) self->budget -= n;
  return inspect(self, buffer, n, error);
}

void guard_input_finalize(GObject* object) {
  GuardInput* self = as_input(object);
  g_clear_error(&self->pending_error);
  g_clear_object(&self->base);
  G_OBJECT_CLASS(guard_input_parent_class)->finalize(object);
}

void guard_input_class_init(GuardInputClass* klass) {
  G_OBJECT_CLASS(klass)->finalize = guard_input_finalize;
  G_INPUT_STREAM_CLASS(klass)->read_fn = guard_input_read;
  G_INPUT_STREAM_CLASS(klass)->close_fn = guard_input_close;
}

void guard_input_init(GuardInput*) {}

void guard_input_pollable_init(GPollableInputStreamInterface* iface) {
  iface->can_poll = guard_input_can_poll;
  iface->is_readable = guard_input_is_readable;
  iface->create_source = guard_input_create_source;
  iface->read_nonblocking = guard_input_read_nonblocking;
}

// ---- Counting output stream ----

struct GuardOutput {
  GOutputStream parent;
  GOutputStream* base;
  FrameGuardStats* stats;
};
struct GuardOutputClass {
  GOutputStreamClass parent_class;
};

GType guard_output_get_type();
void guard_output_pollable_init(GPollableOutputStreamInterface* iface);

G_DEFINE_TYPE_WITH_CODE(GuardOutput, guard_output, G_TYPE_OUTPUT_STREAM,
                        G_IMPLEMENT_INTERFACE(G_TYPE_POLLABLE_OUTPUT_STREAM,
                                              guard_output_pollable_init))

GuardOutput* as_output(gpointer p) {
  return reinterpret_cast<GuardOutput*>(p);
}

gssize count_written(GuardOutput* self, gssize n) {
  if (n > 0) self->stats->bytes_written += static_cast<std::uint64_t>(n);
  return n;
}

gssize guard_output_write(GOutputStream* stream, const void* buffer, gsize count,
                          GCancellable* cancellable, GError** error) {
  GuardOutput* self = as_output(stream);
  return count_written(self, g_output_stream_write(self->base, buffer, count, cancellable, error));
}

gboolean guard_output_flush(GOutputStream* stream, GCancellable* cancellable, GError** error) {
  return g_output_stream_flush(as_output(stream)->base, cancellable, error);
}

gboolean guard_output_close(GOutputStream*, GCancellable*, GError**) {
  return TRUE;
}

gboolean guard_output_can_poll(GPollableOutputStream* stream) {
  return g_pollable_output_stream_can_poll(G_POLLABLE_OUTPUT_STREAM(as_output(stream)->base));
}

gboolean guard_output_is_writable(GPollableOutputStream* stream) {
  return g_pollable_output_stream_is_writable(G_POLLABLE_OUTPUT_STREAM(as_output(stream)->base));
}

GSource* guard_output_create_source(GPollableOutputStream* stream, GCancellable* cancellable) {
  GSource* base_source = g_pollable_output_stream_create_source(
      G_POLLABLE_OUTPUT_STREAM(as_output(stream)->base), cancellable);
  GSource* source = g_pollable_source_new_full(stream, base_source, cancellable);
  g_source_unref(base_source);
  return source;
}

gssize guard_output_write_nonblocking(GPollableOutputStream* stream, const void* buffer,
                                      gsize count, GError** error) {
  GuardOutput* self = as_output(stream);
  return count_written(
      self, g_pollable_output_stream_write_nonblocking(G_POLLABLE_OUTPUT_STREAM(self->base), buffer,
                                                       count, nullptr, error));
}

void guard_output_finalize(GObject* object) {
  g_clear_object(&as_output(object)->base);
  G_OBJECT_CLASS(guard_output_parent_class)->finalize(object);
}

void guard_output_class_init(GuardOutputClass* klass) {
  G_OBJECT_CLASS(klass)->finalize = guard_output_finalize;
  G_OUTPUT_STREAM_CLASS(klass)->write_fn = guard_output_write;
  G_OUTPUT_STREAM_CLASS(klass)->flush = guard_output_flush;
  G_OUTPUT_STREAM_CLASS(klass)->close_fn = guard_output_close;
}

void guard_output_init(GuardOutput*) {}

void guard_output_pollable_init(GPollableOutputStreamInterface* iface) {
  iface->can_poll = guard_output_can_poll;
  iface->is_writable = guard_output_is_writable;
  iface->create_source = guard_output_create_source;
  iface->write_nonblocking = guard_output_write_nonblocking;
}

// ---- The GIOStream ----

struct GuardStream {
  GIOStream parent;
  GIOStream* base;
  GuardInput* input;
  GuardOutput* output;
  FrameGuardStats stats;
};
struct GuardStreamClass {
  GIOStreamClass parent_class;
};

GType guard_stream_get_type();
G_DEFINE_TYPE(GuardStream, guard_stream, G_TYPE_IO_STREAM)

GuardStream* as_stream(gpointer p) {
  return reinterpret_cast<GuardStream*>(p);
}

GInputStream* guard_stream_get_input(GIOStream* stream) {
  return G_INPUT_STREAM(as_stream(stream)->input);
}
GOutputStream* guard_stream_get_output(GIOStream* stream) {
  return G_OUTPUT_STREAM(as_stream(stream)->output);
}

gboolean guard_stream_close(GIOStream* stream, GCancellable* cancellable, GError** error) {
  return g_io_stream_close(as_stream(stream)->base, cancellable, error);
}

void base_closed(GObject* base, GAsyncResult* result, gpointer user_data) {
  GTask* task = G_TASK(user_data);
  GError* error = nullptr;
  if (g_io_stream_close_finish(G_IO_STREAM(base), result, &error)) {
    g_task_return_boolean(task, TRUE);
  } else {
    g_task_return_error(task, error);
  }
  g_object_unref(task);
}

void guard_stream_close_async(GIOStream* stream, int priority, GCancellable* cancellable,
                              GAsyncReadyCallback callback, gpointer user_data) {
  GTask* task = g_task_new(stream, cancellable, callback, user_data);
  g_io_stream_close_async(as_stream(stream)->base, priority, cancellable, base_closed, task);
}

gboolean guard_stream_close_finish(GIOStream*, GAsyncResult* result, GError** error) {
  return g_task_propagate_boolean(G_TASK(result), error);
}

void guard_stream_finalize(GObject* object) {
  GuardStream* self = as_stream(object);
  g_clear_object(&self->input);
  g_clear_object(&self->output);
  g_clear_object(&self->base);
  G_OBJECT_CLASS(guard_stream_parent_class)->finalize(object);
}

void guard_stream_class_init(GuardStreamClass* klass) {
  G_OBJECT_CLASS(klass)->finalize = guard_stream_finalize;
  GIOStreamClass* io = G_IO_STREAM_CLASS(klass);
  io->get_input_stream = guard_stream_get_input;
  io->get_output_stream = guard_stream_get_output;
  io->close_fn = guard_stream_close;
  io->close_async = guard_stream_close_async;
  io->close_finish = guard_stream_close_finish;
}

void guard_stream_init(GuardStream* self) {
  new (&self->stats) FrameGuardStats();
}

}  // namespace

namespace signaling {

GIOStream* frame_guard_new(GIOStream* base, std::size_t max_message_bytes) {
  GuardStream* self = as_stream(g_object_new(guard_stream_get_type(), nullptr));
  self->base = G_IO_STREAM(g_object_ref(base));
  self->stats.last_rx_us = g_get_monotonic_time();

  self->input = as_input(g_object_new(guard_input_get_type(), nullptr));
  self->input->base = G_INPUT_STREAM(g_object_ref(g_io_stream_get_input_stream(base)));
  self->input->parser.max_message_bytes = max_message_bytes;
  self->input->budget = kReadBudget;
  self->input->stats = &self->stats;

  self->output = as_output(g_object_new(guard_output_get_type(), nullptr));
  self->output->base = G_OUTPUT_STREAM(g_object_ref(g_io_stream_get_output_stream(base)));
  self->output->stats = &self->stats;
  return G_IO_STREAM(self);
}

const FrameGuardStats& frame_guard_stats(GIOStream* guard) {
  return as_stream(guard)->stats;
}

}  // namespace signaling
