// Fuzzing the negotiation state machine (gst-plugin/negotiation.h): two calls' machines, alice
// (impolite) and bob (polite), joined by an in-order channel each way, driven by the input:
// each byte is one step (negotiation needed on either side, delivering the next message to
// either side, either side finishing the answer it is making). Glare on the first offer when
// the first byte is odd. Invariants:
//  - a closed machine does nothing any more; "established" never goes back; a restart (the
//    initial glare's polite side) only before the first exchange, and the new machine answers;
//  - an answer is applied only in have-local-offer;
//  - once every message is delivered and every answer made, either both sides are stable with
//    nothing queued, or one of them has an unanswered offer whose answer-timeout will end the
//    call (never stuck without a timer).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <string>

#include "negotiation.h"

namespace {

using webrtccall::Negotiation;
using Action = Negotiation::Action;
using State = Negotiation::State;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "invariant broken: %s\n", what);
    std::abort();
  }
}

struct Side {
  Side(std::string me, std::string other) : me(me), other(other), n(me, other) {}
  std::string me, other;
  Negotiation n;
  bool answering = false;  // an offer applied, our answer not made yet
  std::deque<char> out;    // 'o' offer, 'a' answer
  bool ended = false;
};

struct Model {
  Side a{"alice", "bob"}, b{"bob", "alice"};
  std::int64_t now = 1;

  void run(Side& s, const Negotiation::Step& step) {
    bool was_established = s.n.established();
    switch (step.action) {
      case Action::kSendOffer:
        s.out.push_back('o');
        break;
      case Action::kApplyRemoteOffer:
        check(!s.answering, "two offers applied at once");
        s.answering = true;
        break;
      case Action::kRestartAndAnswer: {
        check(!was_established, "restart after the first exchange");
        check(s.n.state() == State::kClosed, "restarted machine not closed");
        s.n = Negotiation(s.me, s.other);
        Negotiation::Step again = s.n.remote_offer();
        check(again.action == Action::kApplyRemoteOffer, "the new call does not answer");
        s.answering = true;
        s.out.clear();  // the old call's offer is gone with it
        break;
      }
      case Action::kRefuse:
        s.ended = true;
        break;
      default:
        break;
    }
  }

  void deliver(Side& to, Side& from) {
    if (from.out.empty() || to.ended || from.ended) return;
    char m = from.out.front();
    from.out.pop_front();
    if (m == 'o') {
      run(to, to.n.remote_offer());
    } else {
      State before = to.n.state();
      Negotiation::Step step = to.n.remote_answer();
      if (step.action == Action::kApplyRemoteAnswer) {
        check(before == State::kHaveLocalOffer, "answer applied outside have-local-offer");
        run(to, to.n.answer_applied(now));
      } else {
        run(to, step);
      }
    }
  }

  void finish_answer(Side& s) {
    if (!s.answering || s.ended) return;
    s.answering = false;
    s.out.push_back('a');
    run(s, s.n.local_answer(now));
  }

  void step(std::uint8_t op) {
    now += 1000;
    bool ea = a.n.established(), eb = b.n.established();
    switch (op % 6) {
      case 0:
        if (!a.ended) run(a, a.n.negotiation_needed(now));
        break;
      case 1:
        if (!b.ended) run(b, b.n.negotiation_needed(now));
        break;
      case 2:
        deliver(b, a);
        break;
      case 3:
        deliver(a, b);
        break;
      case 4:
        finish_answer(a);
        break;
      default:
        finish_answer(b);
        break;
    }
    check(!ea || a.n.established() || a.ended, "alice's call went back to not established");
    check(!eb || b.n.established() || b.ended, "bob's call went back to not established");
  }

  void check_closed(Side& s) {
    if (s.n.state() != State::kClosed) return;
    check(s.n.remote_offer().action == Action::kNone, "closed machine took an offer");
    check(s.n.remote_answer().action == Action::kNone, "closed machine took an answer");
    check(s.n.negotiation_needed(now).action == Action::kNone, "closed machine offers");
  }

  void drain() {
    for (int i = 0; i < 64; ++i) {
      deliver(b, a);
      deliver(a, b);
      finish_answer(a);
      finish_answer(b);
    }
    check_closed(a);
    check_closed(b);
    if (a.ended || b.ended) return;
    check(a.out.empty() && b.out.empty() && !a.answering && !b.answering, "drain incomplete");
    bool stable = a.n.state() == State::kStable && b.n.state() == State::kStable && !a.n.queued() &&
                  !b.n.queued();
    bool timer = a.n.offer_pending_since_us() != 0 || b.n.offer_pending_since_us() != 0;
    if (!(stable || timer)) {
      std::fprintf(stderr, "alice %s q%d, bob %s q%d\n", to_string(a.n.state()), a.n.queued(),
                   to_string(b.n.state()), b.n.queued());
    }
    check(stable || timer, "stuck: not stable and no offer waiting for an answer");
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  Model m;
  m.run(m.a, m.a.n.local_offer(m.now));
  if (data[0] & 1) m.run(m.b, m.b.n.local_offer(m.now));  // both call: glare
  for (std::size_t i = 1; i < size && i < 4096; ++i) m.step(data[i]);
  m.drain();
  return 0;
}
