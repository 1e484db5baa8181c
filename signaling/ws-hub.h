// The server's WebSocket connections after the upgrade, and the I/O that carries them.
//
// libsoup answers the HTTP upgrade; then the hub takes the stream over. All connections of a
// server share one epoll set, which GLib sees as a single GSource: a main-loop iteration
// costs the same with ten connections as with ten thousand, and a wakeup reads every socket
// that is ready. Output is queued per connection and written once per turn (one write for
// all the messages a connection got in that turn), or at once when a lot is queued.
// Plain TCP connections are read and written with recv()/sendmsg(), batched per turn through
// io_uring where the kernel allows it; TLS connections through their GIO streams
// (GTlsConnection), with the same readiness from epoll.
//
// Everything runs on the thread-default GMainContext of the thread that creates the hub.
#pragma once

#include <gio/gio.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gref.h"
#include "websocket.h"

namespace signaling {

class WsHub;

class WsConnection final : private ws::FrameSink {
 public:
  // What a connection reports to its owner. Calls come from the hub's dispatch.
  class Handler {
   public:
    virtual ~Handler() = default;
    virtual void on_text(WsConnection& c, std::string_view text) = 0;
    virtual void on_binary(WsConnection& c) = 0;
    // The peer broke a rule of RFC 6455 or a limit (1002, 1007, 1008, 1009). The connection
    // closes itself with `code` right after this call; the handler may send a last message.
    virtual void on_violation(WsConnection& c, unsigned short code, std::string_view why) = 0;
    // The connection is over: the close handshake finished, the peer vanished, or it was
    // aborted. Called once; the hub destroys the connection after the current turn.
    virtual void on_closed(WsConnection& c) = 0;
  };

  enum class State { kOpen, kClosing, kClosed };

  ~WsConnection() override;
  WsConnection(const WsConnection&) = delete;
  WsConnection& operator=(const WsConnection&) = delete;

  // Queues a text message. Ignored unless open.
  void send_text(const std::shared_ptr<const std::string>& text);
  void send_ping();
  // Starts the close handshake: sends a close frame and reads nothing but the peer's close.
  // Idempotent.
  void close(unsigned short code, std::string_view reason);
  // Ends the TCP connection now, without a close handshake.
  void abort();

  State state() const { return state_; }
  // Bytes queued and not yet accepted by the socket.
  std::size_t backlog() const { return out_bytes_; }
  std::int64_t last_rx_us() const { return last_rx_us_; }
  std::int64_t closing_since_us() const { return closing_since_us_; }
  // The close code and reason the peer sent (1005 when it sent none, 1006 when the
  // connection ended without a close frame), and whether we closed first.
  unsigned short peer_close_code() const { return peer_close_code_; }
  const std::string& peer_close_reason() const { return peer_close_reason_; }
  unsigned short sent_close_code() const { return sent_close_code_; }

  void* user_data = nullptr;  // the owner's

 private:
  friend class WsHub;
  struct Chunk {
    std::shared_ptr<const std::string> shared;  // a payload shared by many connections
    std::string own;                            // or bytes of this connection's
    std::size_t size() const { return shared ? shared->size() : own.size(); }
    const char* data() const { return shared ? shared->data() : own.data(); }
  };

  // The outcome of one write.
  enum class Wrote { kAll, kMore, kBlocked, kFailed };

  WsConnection(WsHub& hub, GIOStream* stream, GSocket* socket, bool tls,
               std::size_t max_message_bytes);

  // Handles epoll's events; true when the connection should now be read.
  bool on_ready(std::uint32_t events);
  // Plain TCP past libsoup's buffer: the hub may read and write it in batches.
  bool batchable() const { return !tls_ && !gio_reads_; }
  // Reads up to the turn's budget.
  void read_input();
  // Parses bytes just read (unmasking them in place). False when reading stops.
  bool take_input(char* data, std::size_t len);
  // Reads again next turn, without waiting for epoll.
  void read_again();
  // Reads into `buf`: > 0 bytes, 0 at EOF, -1 when nothing is there, -2 on error.
  gssize read_some(char* buf, std::size_t len);
  void queue_frame(ws::Opcode opcode, std::string_view payload,
                   const std::shared_ptr<const std::string>* shared);
  void mark_dirty();
  // Writes what is queued. Returns false when the connection ended or failed. `eager`: called
  // while queueing, inside somebody's callback, where the connection must not end.
  bool flush(bool eager);
  // The queued bytes as at most `max` iovecs; returns how many.
  int gather(iovec* iov, int max) const;
  // One write of what is queued: bytes written, or -errno.
  gssize write_direct();
  // Accounts for a write's result (bytes, or -errno).
  Wrote wrote(gssize result);
  // After the last write: waits for EPOLLOUT, or ends the connection when it failed or its
  // close handshake is done. Returns false when the connection ended or failed.
  bool settle(Wrote last, bool eager);
  // Tells epoll what to wait for: input until the reader is done, output while blocked.
  void update_interest();
  // Closes the socket and reports on_closed.
  void finish();

  // ws::FrameSink
  bool on_text(std::string_view text) override;
  bool on_binary(std::size_t bytes) override;
  bool on_ping(std::string_view payload) override;
  bool on_pong() override;
  void on_close(unsigned short code, std::string_view reason) override;
  void on_error(unsigned short code, std::string_view why) override;

  WsHub& hub_;
  std::size_t slot_ = 0;  // index in the hub's list
  gwc::GRef<GIOStream> stream_;
  gwc::GRef<GSocket> socket_;
  int fd_ = -1;
  bool tls_ = false;
  bool gio_reads_ = true;  // libsoup may still hold bytes it read: drain them through GIO first
  ws::FrameReader reader_;
  std::string in_;  // an incomplete frame carried over to the next read
  std::vector<Chunk> out_;
  std::size_t out_head_ = 0;    // first chunk not fully written
  std::size_t out_offset_ = 0;  // bytes of out_[out_head_] already written
  std::size_t out_bytes_ = 0;
  bool dirty_ = false;
  bool again_ = false;  // stopped at the read budget with more to read
  bool writing_blocked_ = false;
  State state_ = State::kOpen;
  bool finish_when_flushed_ = false;  // the close handshake is over (or failed) on our side
  std::uint32_t interest_ = 0;        // the epoll events registered
  std::int64_t last_rx_us_ = 0;
  std::int64_t closing_since_us_ = 0;
  unsigned short peer_close_code_ = ws::kCloseAbnormal;
  std::string peer_close_reason_;
  unsigned short sent_close_code_ = 0;
};

class WsHub {
 public:
  // Attaches to the thread-default main context. `io_uring`: batch the system calls of a turn
  // through io_uring when the kernel allows it (else, and for TLS, one call each).
  // `busy_poll_us`: while connections keep the hub busy more than half of the time, look for
  // new input again until none came for this long, instead of sleeping (0: never).
  WsHub(WsConnection::Handler& handler, bool io_uring, unsigned busy_poll_us);
  ~WsHub();
  WsHub(const WsHub&) = delete;
  WsHub& operator=(const WsHub&) = delete;

  // Takes over an upgraded stream (from soup_server_message_steal_connection). `socket` is
  // its socket; `tls`: the stream is a TLS connection. Returns nullptr (and closes the
  // stream) when the socket cannot be watched.
  WsConnection* adopt(GIOStream* stream, GSocket* socket, bool tls, std::size_t max_message_bytes);

  // How plain connections are read and written: "io_uring", or "system calls (why)".
  const std::string& io_note() const { return io_note_; }

 private:
  friend class WsConnection;
  struct Source;
  struct Batch;
  static gboolean prepare(GSource* source, gint* timeout);
  static gboolean check(GSource* source);
  static gboolean dispatch(GSource* source, GSourceFunc, gpointer);
  // One turn: reads what is ready, writes what was queued. Returns the epoll events seen.
  int run_turn(bool epoll_ready);
  // Load accounting for busy polling: `work_us` spent on connections, up to `now_us`.
  void account(std::int64_t work_us, std::int64_t now_us);
  void busy_poll();
  void flush_dirty();
  void read_batch(const std::vector<WsConnection*>& readers);
  void write_batch(const std::vector<WsConnection*>& writers);
  bool has_work() const { return !dirty_.empty() || !again_.empty() || !retired_.empty(); }

  WsConnection::Handler& handler_;
  std::int64_t busy_poll_us_ = 0;
  std::int64_t busy_us_ = 0;          // time spent in turns in the current window
  std::int64_t window_start_us_ = 0;  // start of the load window
  bool busy_ = false;                 // the last window was over half busy
  int epfd_ = -1;
  GSource* source_ = nullptr;
  gpointer epoll_tag_ = nullptr;
  std::vector<std::unique_ptr<WsConnection>> conns_;  // at WsConnection::slot_
  std::vector<WsConnection*> dirty_;                  // output queued this turn
  std::vector<WsConnection*> again_;                  // more to read next turn
  std::vector<WsConnection*> retired_;                // closed: destroyed after the turn
  std::string scratch_;                               // read buffer shared by all connections
  std::unique_ptr<Batch> batch_;                      // null: one system call each
  std::string io_note_;
  std::vector<WsConnection*> readers_;  // this turn's batch of reads
  std::vector<WsConnection*> writers_;  // and of writes
};

}  // namespace signaling
