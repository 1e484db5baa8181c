#include "ws-hub.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#ifdef HAVE_LIBURING
#include <liburing.h>
#endif

namespace signaling {

namespace {

// Bytes read from one connection in one turn before the others get theirs.
constexpr std::size_t kReadBudget = 64 * 1024;
// Payloads at least this large are queued by reference instead of copied (a user list
// broadcast to thousands of connections is one string).
constexpr std::size_t kShareMin = 1024;
// Queued bytes that are written at once instead of at the end of the turn.
constexpr std::size_t kEagerFlush = 64 * 1024;
// Buffers larger than this are released when they empty: idle connections stay small.
constexpr std::size_t kKeepCapacity = 4096;
constexpr int kMaxEvents = 256;
constexpr int kMaxIov = 64;
// Reads and writes batched into one io_uring_enter(), and the bytes one batched read takes.
constexpr std::size_t kBatchMax = kMaxEvents;
constexpr std::size_t kBatchSlice = 16 * 1024;
// Busy polling: the load is measured over windows of this length, and one dispatch polls
// for at most kMaxPollUs.
constexpr std::int64_t kLoadWindowUs = 10000;
constexpr std::int64_t kMaxPollUs = 1000;

template <typename T>
void release_if_large(T& v) {
  if (v.capacity() > kKeepCapacity) T().swap(v);
}

}  // namespace

// ---- WsConnection ----

WsConnection::WsConnection(WsHub& hub, GIOStream* stream, GSocket* socket, bool tls,
                           std::size_t max_message_bytes)
    : hub_(hub),
      stream_(gwc::GRef<GIOStream>::ref(stream)),
      socket_(gwc::GRef<GSocket>::ref(socket)),
      fd_(g_socket_get_fd(socket)),
      tls_(tls),
      reader_(max_message_bytes),
      last_rx_us_(g_get_monotonic_time()) {}

WsConnection::~WsConnection() {
  if (state_ != State::kClosed) {
    epoll_ctl(hub_.epfd_, EPOLL_CTL_DEL, fd_, nullptr);
    g_socket_close(socket_.get(), nullptr);
  }
}

void WsConnection::send_text(const std::shared_ptr<const std::string>& text) {
  if (state_ != State::kOpen) return;
  queue_frame(ws::kText, *text, &text);
}

void WsConnection::send_ping() {
  if (state_ != State::kOpen) return;
  queue_frame(ws::kPing, {}, nullptr);
}

void WsConnection::close(unsigned short code, std::string_view reason) {
  if (state_ != State::kOpen) return;
  queue_frame(ws::kClose, ws::close_payload(code, reason), nullptr);
  sent_close_code_ = code;
  state_ = State::kClosing;
  closing_since_us_ = g_get_monotonic_time();
}

void WsConnection::abort() {
  finish();
}

void WsConnection::queue_frame(ws::Opcode opcode, std::string_view payload,
                               const std::shared_ptr<const std::string>* shared) {
  char header[10];
  std::size_t header_len = ws::frame_header(header, opcode, payload.size());
  auto own_tail = [this]() -> std::string& {
    if (out_.size() == out_head_ || out_.back().shared) out_.emplace_back();
    return out_.back().own;
  };
  if (shared && payload.size() >= kShareMin) {
    own_tail().append(header, header_len);
    out_.push_back(Chunk{*shared, {}});
  } else {
    std::string& tail = own_tail();
    tail.append(header, header_len);
    tail.append(payload);
  }
  out_bytes_ += header_len + payload.size();
  mark_dirty();
  if (out_bytes_ >= kEagerFlush && !writing_blocked_) flush(/*eager=*/true);
}

void WsConnection::mark_dirty() {
  if (dirty_) return;
  dirty_ = true;
  hub_.dirty_.push_back(this);
}

int WsConnection::gather(iovec* iov, int max) const {
  int n = 0;
  for (std::size_t i = out_head_; i < out_.size() && n < max; ++i, ++n) {
    std::size_t skip = i == out_head_ ? out_offset_ : 0;
    iov[n].iov_base = const_cast<char*>(out_[i].data() + skip);
    iov[n].iov_len = out_[i].size() - skip;
  }
  return n;
}

gssize WsConnection::write_direct() {
  iovec iov[kMaxIov];
  int n = gather(iov, kMaxIov);
  if (!tls_) {
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<std::size_t>(n);
    ssize_t w = sendmsg(fd_, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    return w >= 0 ? w : -errno;
  }
  GOutputVector vec[kMaxIov];
  for (int i = 0; i < n; ++i) vec[i] = {iov[i].iov_base, iov[i].iov_len};
  gsize w = 0;
  GError* error = nullptr;
  GPollableReturn r = g_pollable_output_stream_writev_nonblocking(
      G_POLLABLE_OUTPUT_STREAM(g_io_stream_get_output_stream(stream_.get())), vec,
      static_cast<gsize>(n), &w, nullptr, &error);
  if (error) g_error_free(error);
  if (r == G_POLLABLE_RETURN_OK) return static_cast<gssize>(w);
  return r == G_POLLABLE_RETURN_WOULD_BLOCK ? -EAGAIN : -EPIPE;
}

WsConnection::Wrote WsConnection::wrote(gssize result) {
  if (result == -EINTR) return Wrote::kMore;
  if (result == -EAGAIN || result == -EWOULDBLOCK) return Wrote::kBlocked;
  if (result < 0) return Wrote::kFailed;
  auto written = static_cast<std::size_t>(result);
  out_bytes_ -= written;
  while (written > 0) {
    std::size_t left = out_[out_head_].size() - out_offset_;
    if (written < left) {
      out_offset_ += written;
      break;
    }
    written -= left;
    out_[out_head_] = Chunk{};
    ++out_head_;
    out_offset_ = 0;
  }
  return out_bytes_ > 0 ? Wrote::kMore : Wrote::kAll;
}

bool WsConnection::settle(Wrote last, bool eager) {
  if (last == Wrote::kFailed) {
    // The peer is gone. An eager flush runs inside someone else's callback: leave the
    // ending to the end of the turn, which writes again and sees the same error.
    if (!eager) finish();
    return false;
  }
  if (last == Wrote::kAll && out_bytes_ > 0) {
    // All was written, and more was queued since (a batched write): write it this turn.
    mark_dirty();
    return true;
  }
  if (out_bytes_ == 0) {
    out_.clear();
    release_if_large(out_);
    out_head_ = 0;
    out_offset_ = 0;
    writing_blocked_ = false;
    update_interest();
    if (finish_when_flushed_ && !eager) {
      finish();
      return false;
    }
    return true;
  }
  writing_blocked_ = true;
  update_interest();
  return true;
}

bool WsConnection::flush(bool eager) {
  if (state_ == State::kClosed) return false;
  if (!eager) dirty_ = false;
  Wrote last = Wrote::kAll;
  while (out_bytes_ > 0) {
    last = wrote(write_direct());
    if (last != Wrote::kMore) break;
  }
  return settle(last, eager);
}

void WsConnection::update_interest() {
  if (state_ == State::kClosed) return;
  std::uint32_t events = 0;
  if (!reader_.done()) events |= EPOLLIN;
  if (writing_blocked_) events |= EPOLLOUT;
  if (events == interest_) return;
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = this;
  if (epoll_ctl(hub_.epfd_, EPOLL_CTL_MOD, fd_, &ev) == 0) interest_ = events;
}

bool WsConnection::on_ready(std::uint32_t events) {
  if (state_ == State::kClosed) return false;
  if ((events & EPOLLOUT) && !flush(/*eager=*/false)) return false;
  if (!reader_.done()) return (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0;
  if (events & (EPOLLHUP | EPOLLERR)) finish();
  return false;
}

gssize WsConnection::read_some(char* buf, std::size_t len) {
  if (gio_reads_ || tls_) {
    GError* error = nullptr;
    gssize n = g_pollable_input_stream_read_nonblocking(
        G_POLLABLE_INPUT_STREAM(g_io_stream_get_input_stream(stream_.get())), buf, len, nullptr,
        &error);
    if (n < 0) {
      bool would_block = g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
      g_error_free(error);
      if (!would_block) return -2;
      gio_reads_ = false;
      return -1;
    }
    // A short read emptied libsoup's buffer: from now on, straight from the socket.
    if (static_cast<std::size_t>(n) < len) gio_reads_ = false;
    return n;
  }
  while (true) {
    ssize_t n = recv(fd_, buf, len, 0);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    return errno == EAGAIN || errno == EWOULDBLOCK ? -1 : -2;
  }
}

bool WsConnection::take_input(char* data, std::size_t len) {
  std::int64_t now = g_get_monotonic_time();
  last_rx_us_ = now;
  if (in_.empty()) {
    std::size_t used = reader_.feed(data, len, now, *this);
    if (used < len && state_ != State::kClosed && !reader_.done()) {
      in_.assign(data + used, len - used);
    }
  } else {
    in_.append(data, len);
    std::size_t used = reader_.feed(in_.data(), in_.size(), now, *this);
    in_.erase(0, used);
    if (in_.empty()) release_if_large(in_);
  }
  if (reader_.done()) {
    std::string().swap(in_);
    update_interest();
    return false;
  }
  return state_ != State::kClosed;
}

void WsConnection::read_again() {
  if (again_) return;
  again_ = true;
  hub_.again_.push_back(this);
}

void WsConnection::read_input() {
  std::string& scratch = hub_.scratch_;
  std::size_t budget = kReadBudget;
  while (state_ != State::kClosed && !reader_.done()) {
    std::size_t want = std::min(budget, scratch.size());
    gssize n = read_some(scratch.data(), want);
    if (n == -1) return;  // drained
    if (n <= 0) {         // EOF or error: the peer is gone
      finish();
      return;
    }
    auto got = static_cast<std::size_t>(n);
    if (!take_input(scratch.data(), got)) return;
    budget -= got;
    if (budget == 0) {
      // Fairness: the others get their turn; this one continues in the next.
      read_again();
      return;
    }
    // Plain sockets: a short read drained the socket (epoll reports new data). TLS may
    // still hold decrypted records: read until it says it would block.
    if (!tls_ && !gio_reads_ && got < want) return;
  }
}

void WsConnection::finish() {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  epoll_ctl(hub_.epfd_, EPOLL_CTL_DEL, fd_, nullptr);
  // Shut down first: closing never waits for a peer that does not read (nor for TLS's
  // close_notify to get through).
  g_socket_shutdown(socket_.get(), TRUE, TRUE, nullptr);
  g_socket_close(socket_.get(), nullptr);
  std::string().swap(in_);
  out_.clear();
  release_if_large(out_);
  out_bytes_ = 0;
  hub_.retired_.push_back(this);
  hub_.handler_.on_closed(*this);
}

// ---- ws::FrameSink ----

bool WsConnection::on_text(std::string_view text) {
  if (state_ == State::kOpen) hub_.handler_.on_text(*this, text);
  return state_ != State::kClosed;
}

bool WsConnection::on_binary(std::size_t) {
  if (state_ == State::kOpen) hub_.handler_.on_binary(*this);
  return state_ != State::kClosed;
}

bool WsConnection::on_ping(std::string_view payload) {
  if (state_ == State::kOpen) queue_frame(ws::kPong, payload, nullptr);
  return state_ != State::kClosed;
}

bool WsConnection::on_pong() {
  return true;
}

void WsConnection::on_close(unsigned short code, std::string_view reason) {
  peer_close_code_ = code;
  peer_close_reason_.assign(reason);
  if (state_ == State::kOpen) {
    // Echo the code (RFC 6455 section 5.5.1), then end the connection once it is written.
    queue_frame(ws::kClose,
                code == ws::kCloseNoStatus ? std::string() : ws::close_payload(code, {}), nullptr);
    sent_close_code_ = code;
    state_ = State::kClosing;
    closing_since_us_ = g_get_monotonic_time();
  }
  finish_when_flushed_ = true;
  mark_dirty();
}

void WsConnection::on_error(unsigned short code, std::string_view why) {
  if (state_ == State::kOpen) hub_.handler_.on_violation(*this, code, why);
  close(code, why);
  finish_when_flushed_ = true;
  mark_dirty();
}

// ---- WsHub ----

struct WsHub::Source {
  GSource base;
  WsHub* hub;
};

// The system calls of a turn in batches: one io_uring_enter() for the reads of every ready
// connection, one for the writes of every connection with output. On this project's
// development machine a system call costs about 1.2 µs, as much as the work of a small send.
struct WsHub::Batch {
#ifdef HAVE_LIBURING
  io_uring ring{};
#endif
  std::unique_ptr<char[]> arena{new char[kBatchMax * kBatchSlice]};
  std::vector<iovec> iovs = std::vector<iovec>(kBatchMax * kMaxIov);
  std::vector<msghdr> msgs = std::vector<msghdr>(kBatchMax);
  std::vector<int> results = std::vector<int>(kBatchMax);
  std::vector<WsConnection::Wrote> outcomes = std::vector<WsConnection::Wrote>(kBatchMax);
  std::vector<bool> used = std::vector<bool>(kBatchMax);
  bool ready = false;  // the ring is set up (and not given up)
  int error = 0;       // why the ring was given up

  ~Batch() {
    close();
  }

  void close() {
#ifdef HAVE_LIBURING
    if (ready) io_uring_queue_exit(&ring);
#endif
    ready = false;
  }

  // Runs the `count` requests prepared (user_data: their index) and waits for all of them:
  // every one is non-blocking (MSG_DONTWAIT), so they complete within the call. Should the
  // kernel refuse the batch, the ring is closed (requests still queued in it must never run
  // later, on buffers long reused), `ready` is false and the hub goes on with system calls:
  // requests that never ran have -EAGAIN (epoll reports their sockets again), those whose
  // outcome is unknown -EIO (their connections end: a write may have gone out).
  void run(unsigned count) {
    std::fill(results.begin(), results.end(), -EIO);
#ifdef HAVE_LIBURING
    int r;
    int tries = 0;
    do {
      r = io_uring_submit_and_wait(&ring, count);
    } while ((r == -EINTR || r == -EAGAIN || r == -EBUSY) && ++tries < 100);
    if (r < 0) {
      std::fill(results.begin(), results.end(), -EAGAIN);  // none of them ran
      error = -r;
      close();
      return;
    }
    unsigned seen = 0;
    while (seen < count) {
      io_uring_cqe* cqe = nullptr;
      r = io_uring_wait_cqe(&ring, &cqe);
      if (r == -EINTR) continue;
      if (r < 0) {
        error = -r;
        close();
        return;
      }
      if (cqe->user_data < results.size()) results[cqe->user_data] = cqe->res;
      io_uring_cqe_seen(&ring, cqe);
      ++seen;
    }
#else
    (void)count;
#endif
  }

#ifdef HAVE_LIBURING
  io_uring_sqe* next(std::size_t index) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    io_uring_sqe_set_data64(sqe, index);
    return sqe;
  }
#endif
};

WsHub::WsHub(WsConnection::Handler& handler, bool io_uring, unsigned busy_poll_us)
    : handler_(handler),
      busy_poll_us_(static_cast<std::int64_t>(busy_poll_us)),
      scratch_(kReadBudget, '\0') {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (!io_uring) {
    io_note_ = "system calls (io_uring turned off)";
  } else {
#ifdef HAVE_LIBURING
    auto batch = std::make_unique<Batch>();
    int r = io_uring_queue_init(kBatchMax, &batch->ring, 0);
    if (r == 0) {
      batch->ready = true;
      batch_ = std::move(batch);
      io_note_ = "io_uring";
    } else {
      io_note_ = std::string("system calls (io_uring unavailable: ") + g_strerror(-r) + ")";
    }
#else
    io_note_ = "system calls (built without liburing)";
#endif
  }
  static GSourceFuncs funcs = {prepare, check, dispatch, nullptr, nullptr, nullptr};
  source_ = g_source_new(&funcs, sizeof(Source));
  reinterpret_cast<Source*>(source_)->hub = this;
  g_source_set_name(source_, "webrtc-call-server websockets");
  // GLib blocks a source while it dispatches by removing its fd from the poll set and
  // adding it back, which wakes the context twice per turn (two eventfd writes and a read).
  // The dispatch never iterates the context, so it cannot recurse.
  g_source_set_can_recurse(source_, TRUE);
  if (epfd_ >= 0) epoll_tag_ = g_source_add_unix_fd(source_, epfd_, G_IO_IN);
  g_source_attach(source_, g_main_context_get_thread_default());
}

WsHub::~WsHub() {
  g_source_destroy(source_);
  g_source_unref(source_);
  conns_.clear();  // closes what is still open, without callbacks
  batch_.reset();
  if (epfd_ >= 0) ::close(epfd_);
}

WsConnection* WsHub::adopt(GIOStream* stream, GSocket* socket, bool tls,
                           std::size_t max_message_bytes) {
  std::unique_ptr<WsConnection> c(new WsConnection(*this, stream, socket, tls, max_message_bytes));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = c.get();
  if (epfd_ < 0 || c->fd_ < 0 || epoll_ctl(epfd_, EPOLL_CTL_ADD, c->fd_, &ev) != 0) {
    c->state_ = WsConnection::State::kClosed;
    g_socket_close(socket, nullptr);
    return nullptr;
  }
  c->interest_ = EPOLLIN;
  // Signaling messages are small and latency-bound: never wait to coalesce them.
  int one = 1;
  setsockopt(c->fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  g_socket_set_blocking(socket, FALSE);
  WsConnection* raw = c.get();
  raw->slot_ = conns_.size();
  conns_.push_back(std::move(c));
  // libsoup may have read bytes past the handshake: read once without waiting for epoll.
  raw->again_ = true;
  again_.push_back(raw);
  return raw;
}

gboolean WsHub::prepare(GSource* source, gint* timeout) {
  WsHub* hub = reinterpret_cast<Source*>(source)->hub;
  if (hub->has_work()) {
    *timeout = 0;
    return TRUE;
  }
  *timeout = -1;
  return FALSE;
}

gboolean WsHub::check(GSource* source) {
  WsHub* hub = reinterpret_cast<Source*>(source)->hub;
  return hub->has_work() ||
         (hub->epoll_tag_ && (g_source_query_unix_fd(source, hub->epoll_tag_) & G_IO_IN));
}

gboolean WsHub::dispatch(GSource* source, GSourceFunc, gpointer) {
  WsHub* hub = reinterpret_cast<Source*>(source)->hub;
  std::int64_t start = g_get_monotonic_time();
  hub->run_turn(hub->epoll_tag_ && (g_source_query_unix_fd(source, hub->epoll_tag_) & G_IO_IN));
  std::int64_t end = g_get_monotonic_time();
  hub->account(end - start, end);
  hub->busy_poll();
  return G_SOURCE_CONTINUE;
}

void WsHub::account(std::int64_t work_us, std::int64_t now_us) {
  busy_us_ += work_us;
  if (window_start_us_ == 0) window_start_us_ = now_us;
  std::int64_t window = now_us - window_start_us_;
  if (window < kLoadWindowUs) return;
  busy_ = busy_us_ * 2 > window;  // over half of the time spent on connections
  busy_us_ = 0;
  window_start_us_ = now_us;
}

void WsHub::busy_poll() {
  if (!busy_ || busy_poll_us_ <= 0) return;
  // Busy: the next messages are due within microseconds. Looking for them costs a system
  // call; going to sleep in poll() and being woken costs far more, and adds its latency to
  // every message. Poll until none came for busy_poll_us_, and give the main loop's other
  // sources (timers, HTTP) their turn after kMaxPollUs at the latest. Only turns that found
  // something count as work, so polling alone never keeps the hub "busy".
  std::int64_t start = g_get_monotonic_time(), last = start, now = start;
  while (now - last < busy_poll_us_ && now - start < kMaxPollUs) {
    std::int64_t before = now;
    bool any = run_turn(true) > 0;
    now = g_get_monotonic_time();
    if (any) {
      last = now;
      account(now - before, now);
    }
  }
  account(0, now);
}

int WsHub::run_turn(bool epoll_ready) {
  // Connections that stopped at their read budget last turn.
  if (!again_.empty()) {
    std::vector<WsConnection*> again;
    again.swap(again_);
    for (WsConnection* c : again) {
      c->again_ = false;
      if (c->state_ != WsConnection::State::kClosed) c->read_input();
    }
  }
  int n = 0;
  if (epoll_ready) {
    epoll_event events[kMaxEvents];
    n = epoll_wait(epfd_, events, kMaxEvents, 0);
    readers_.clear();
    for (int i = 0; i < n; ++i) {
      auto* c = static_cast<WsConnection*>(events[i].data.ptr);
      if (!c->on_ready(events[i].events)) continue;
      if (batch_ && c->batchable()) {
        readers_.push_back(c);
      } else {
        c->read_input();
      }
    }
    if (!readers_.empty()) read_batch(readers_);
  }
  flush_dirty();
  if (batch_ && !batch_->ready) {
    io_note_ = std::string("system calls (io_uring failed: ") + g_strerror(batch_->error) + ")";
    g_warning("WebSocket I/O: %s", io_note_.c_str());
    batch_.reset();
  }
  if (!retired_.empty()) {
    std::vector<WsConnection*> retired;
    retired.swap(retired_);
    for (WsConnection* c : retired) {
      if (c->again_) std::erase(again_, c);
      std::size_t slot = c->slot_;
      if (slot != conns_.size() - 1) {
        std::swap(conns_[slot], conns_.back());
        conns_[slot]->slot_ = slot;
      }
      conns_.pop_back();
    }
  }
  return n;
}

void WsHub::flush_dirty() {
  // One write per connection for everything it got this turn. Flushing can end
  // connections, whose owners may send more: the list grows while it is walked.
  std::size_t i = 0;
  while (i < dirty_.size()) {
    if (!batch_ || !batch_->ready) {
      WsConnection* c = dirty_[i++];
      if (c->dirty_) c->flush(/*eager=*/false);
      continue;
    }
    writers_.clear();
    while (i < dirty_.size() && writers_.size() < kBatchMax) {
      WsConnection* c = dirty_[i++];
      if (!c->dirty_ || c->state_ == WsConnection::State::kClosed) continue;
      if (c->batchable() && !c->writing_blocked_ && c->out_bytes_ > 0) {
        writers_.push_back(c);
      } else {
        c->flush(/*eager=*/false);
      }
    }
    if (!writers_.empty()) write_batch(writers_);
  }
  dirty_.clear();
}

void WsHub::read_batch(const std::vector<WsConnection*>& readers) {
#ifdef HAVE_LIBURING
  for (std::size_t start = 0; start < readers.size(); start += kBatchMax) {
    if (!batch_->ready) {  // given up in an earlier batch: the rest one by one
      for (std::size_t k = start; k < readers.size(); ++k) {
        if (readers[k]->state_ != WsConnection::State::kClosed) readers[k]->read_input();
      }
      return;
    }
    std::size_t count = std::min(kBatchMax, readers.size() - start);
    unsigned prepared = 0;
    for (std::size_t k = 0; k < count; ++k) {
      WsConnection* c = readers[start + k];
      batch_->used[k] = c->state_ != WsConnection::State::kClosed && !c->reader_.done();
      if (!batch_->used[k]) continue;
      io_uring_prep_recv(batch_->next(k), c->fd_, batch_->arena.get() + k * kBatchSlice,
                         kBatchSlice, MSG_DONTWAIT);
      ++prepared;
    }
    batch_->run(prepared);
    for (std::size_t k = 0; k < count; ++k) {
      WsConnection* c = readers[start + k];
      // Skipped, or ended meanwhile by what another connection sent (its bytes go with it).
      if (!batch_->used[k] || c->state_ == WsConnection::State::kClosed) continue;
      int r = batch_->results[k];
      if (r > 0) {
        auto got = static_cast<std::size_t>(r);
        // A full slice: more may be waiting. Read it next turn.
        if (c->take_input(batch_->arena.get() + k * kBatchSlice, got) && got == kBatchSlice) {
          c->read_again();
        }
      } else if (r != -EAGAIN && r != -EWOULDBLOCK && r != -EINTR) {
        c->finish();  // EOF (0) or an error: the peer is gone
      }
    }
  }
#else
  for (WsConnection* c : readers) c->read_input();
#endif
}

void WsHub::write_batch(const std::vector<WsConnection*>& writers) {
#ifdef HAVE_LIBURING
  std::size_t count = writers.size();
  unsigned prepared = 0;
  for (std::size_t k = 0; k < count; ++k) {
    WsConnection* c = writers[k];
    batch_->used[k] = c->state_ != WsConnection::State::kClosed;
    if (!batch_->used[k]) continue;
    c->dirty_ = false;
    iovec* iov = batch_->iovs.data() + k * kMaxIov;
    msghdr& msg = batch_->msgs[k];
    msg = msghdr{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<std::size_t>(c->gather(iov, kMaxIov));
    io_uring_prep_sendmsg(batch_->next(k), c->fd_, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    ++prepared;
  }
  batch_->run(prepared);
  // Account for every write before acting on any: acting can run handlers that queue (and
  // even write) more to a connection whose write is accounted further down the list.
  for (std::size_t k = 0; k < count; ++k) {
    if (batch_->used[k]) batch_->outcomes[k] = writers[k]->wrote(batch_->results[k]);
  }
  for (std::size_t k = 0; k < count; ++k) {
    WsConnection* c = writers[k];
    if (!batch_->used[k] || c->state_ == WsConnection::State::kClosed) continue;
    if (batch_->outcomes[k] == WsConnection::Wrote::kMore) {
      c->flush(/*eager=*/false);  // a short write: the rest, or EAGAIN
    } else {
      c->settle(batch_->outcomes[k], /*eager=*/false);
    }
  }
#else
  for (WsConnection* c : writers) c->flush(/*eager=*/false);
#endif
}

}  // namespace signaling
