// Fuzzing the router (signaling/router.h) with scripts of connection events and messages
// from several clients.
//
// An input is a script, one operation per line: the first byte says what, the second which
// of six client slots (any byte, taken modulo 6), the rest is the operation's argument:
//   c<slot>[!]     a connection opens in the slot (if it is empty); `!` means the transport
//                  did not check the token (the router is configured with one)
//   d<slot>        the slot's connection goes away
//   m<slot><text>  the slot's connection sends the text message <text>
//   r<slot><byte>  the transport refuses a message of the connection (code: byte modulo the
//                  number of error codes)
//   t<slot><ms>    the clock moves on by <ms> milliseconds (each operation also moves it 1 ms)
// Any other line does nothing. Closes the router asks for are carried out at once, as the
// server does (the connection departs, its partners get a hang-up). A script whose first line
// is `U` runs the router with relay_untargeted (--relay-untargeted) and at most 3 held
// candidates per caller; the checks for that mode are below (on_message_relay).
//
// After every operation its effects are checked against a model of who may get what, kept
// here from what the router delivered (not from its state):
//  - a new connection gets its `id`, and nothing else happens;
//  - a message goes to others only as a chat (to every registered client, once each, with the
//    sender's name and no markup) or as one relayed message (never more: SDP and candidates
//    are never broadcast) of the type sent, stamped with the sender's name, to the client
//    registered under its `target`, or without a target to the sender's only call partner;
//    an unregistered client never gets a chat or a relayed message;
//  - an answer that pairs its sender ends the sender's own pending offer: the others it rang get
//    a hang-up answered-elsewhere in its name;
//  - what goes back to the sender is an error, a changed name, a chat or a hang-up;
//  - a connection that goes away sends exactly one hang-up to each of its partners;
//  - closes are asked for live connections, with 1008 or 1009;
//  - call partners are those that exchanged an offer (and no hang-up since), both ways;
//  - registered names are unique, valid (normalize_name() leaves them as they are), listed
//    by registered() and the user list, and the user list changes exactly when they do.
#include <glib.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "router.h"

namespace {

namespace protocol = signaling::protocol;
using signaling::ConnId;
using signaling::Effects;

constexpr int kSlots = 6;
constexpr const char* kToken = "s3cret";

std::string_view g_script;  // the input, printed when an invariant breaks
bool g_relay = false;       // the script runs the router with relay_untargeted
constexpr unsigned kMaxHeld = 3;
std::size_t g_line = 0;

void check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "invariant broken at operation %zu: %s\nscript (%zu bytes):\n%.*s\n", g_line,
               what, g_script.size(),
               static_cast<int>(std::min<std::size_t>(g_script.size(), 4096)), g_script.data());
  std::abort();
}

struct Model {
  std::array<ConnId, kSlots> slot{};  // 0: empty
  std::set<ConnId> live;              // open connections
  std::map<ConnId, std::set<ConnId>> partners;
  ConnId next_id = 1;

  void unpair(ConnId a, ConnId b) {
    partners[a].erase(b);
    partners[b].erase(a);
  }
};

// The names the router holds for the live connections (empty: unregistered).
std::map<ConnId, std::string> names_of(const signaling::Router& router, const Model& m) {
  std::map<ConnId, std::string> names;
  for (ConnId c : m.live) names[c] = router.name_of(c);
  return names;
}

ConnId by_name(const std::map<ConnId, std::string>& names, const std::string& name) {
  for (const auto& [c, n] : names) {
    if (!n.empty() && n == name) return c;
  }
  return 0;
}

protocol::ServerMessage parse_sent(const Effects::Send& s) {
  check(g_utf8_validate(s.text->data(), static_cast<gssize>(s.text->size()), nullptr),
        "the server would send text that is not UTF-8");
  auto parsed = protocol::parse_server(*s.text, {});
  check(std::holds_alternative<protocol::ServerMessage>(parsed),
        "the server would send something that is not a valid message");
  return std::get<protocol::ServerMessage>(std::move(parsed));
}

std::string member(JsonObject* o, const char* name) {
  JsonNode* n = json_object_get_member(o, name);
  if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING) return {};
  return json_node_get_string(n);
}

// A hang-up sent because `gone` went away, to each of its partners `before`.
// Who else may get a hang-up when `gone` departs in the untargeted mode: those its pending
// untargeted offer rang, and the callers whose pending offer it was the last to be rung by.
std::set<ConnId> rung_with(const signaling::Router& router, const Model& m, ConnId gone) {
  std::set<ConnId> out = router.offered_to(gone);
  for (ConnId c : m.live) {
    if (router.offered_to(c).contains(gone)) out.insert(c);
  }
  return out;
}

void check_departure_hang_ups(const Effects& fx, std::size_t from, ConnId gone,
                              const std::set<ConnId>& before, const std::string& gone_name,
                              const std::set<ConnId>& rung = {}) {
  std::multiset<ConnId> got;
  for (std::size_t i = from; i < fx.sends.size(); ++i) {
    const Effects::Send& s = fx.sends[i];
    auto msg = parse_sent(s);
    auto* r = std::get_if<protocol::RelayedMsg>(&msg);
    check(r && r->type == "hang-up", "a departure sends something other than a hang-up");
    check(r->name == gone_name, "a departure's hang-up does not name who left");
    check(member(r->object.get(), "reason") == "disconnected",
          "a departure's hang-up does not say `disconnected`");
    if (g_relay && !before.contains(s.to)) {
      check(rung.contains(s.to), "a departure hangs up on someone neither in a call nor rung");
    }
    got.insert(s.to);
  }
  if (g_relay) {
    std::multiset<ConnId> partners;
    for (ConnId c : got) {
      if (before.contains(c)) partners.insert(c);
    }
    for (ConnId c : got) check(got.count(c) == 1, "a departure hangs up twice on one client");
    check(partners == std::multiset<ConnId>(before.begin(), before.end()),
          "a departure does not hang up exactly once on each call partner");
    return;
  }
  check(got == std::multiset<ConnId>(before.begin(), before.end()),
        "a departure does not hang up exactly once on each call partner");
  (void)gone;
}

// Carries out the closes in fx (and those their departures ask for), as the server does.
void apply_closes(signaling::Router& router, Model& m, Effects& fx) {
  for (std::size_t k = 0; k < fx.closes.size(); ++k) {
    const Effects::Close cl = fx.closes[k];
    check(cl.code == signaling::kClosePolicy || cl.code == signaling::kCloseTooBig,
          "a close code other than 1008 or 1009");
    if (!m.live.contains(cl.conn)) continue;  // asked twice; the server closes once
    const std::set<ConnId> before = m.partners[cl.conn];
    const std::string name = router.name_of(cl.conn);
    const std::set<ConnId> rung = rung_with(router, m, cl.conn);
    Effects more;
    router.disconnect(cl.conn, more);
    check(more.closes.empty(), "a departure asks for a close");
    check_departure_hang_ups(more, 0, cl.conn, before, name, rung);
    for (ConnId p : before) m.unpair(cl.conn, p);
    m.partners.erase(cl.conn);
    m.live.erase(cl.conn);
    for (ConnId& s : m.slot) {
      if (s == cl.conn) s = 0;
    }
  }
}

void check_state(const signaling::Router& router, const Model& m,
                 const std::map<ConnId, std::string>& before, bool userlist_changed) {
  check(router.connection_count() == m.live.size(), "the router counts other connections");
  const std::map<ConnId, std::string> names = names_of(router, m);
  std::set<std::string> unique;
  std::vector<ConnId> named;
  for (const auto& [c, n] : names) {
    if (n.empty()) continue;
    check(unique.insert(n).second, "two connections registered under one name");
    std::string why;
    auto normal = protocol::normalize_name(n, &why);
    check(normal && *normal == n, "a registered name that is not a valid name");
    named.push_back(c);
  }
  std::vector<ConnId> reg = router.registered();
  std::sort(reg.begin(), reg.end());
  check(reg == named, "registered() lists other connections than those with a name");
  check(router.registered_count() == named.size(), "registered_count() is off");

  auto list = protocol::parse_server(router.userlist_message(), {});
  check(std::holds_alternative<protocol::ServerMessage>(list), "the user list is not valid");
  auto* users = std::get_if<protocol::UserListMsg>(&std::get<protocol::ServerMessage>(list));
  check(users != nullptr, "the user list is not a userlist");
  check(std::vector<std::string>(unique.begin(), unique.end()) == users->users,
        "the user list holds other names than the registered ones, or is not sorted");

  std::multiset<std::string> old_names, new_names;
  for (const auto& [c, n] : before) {
    if (!n.empty()) old_names.insert(n);
  }
  for (const auto& n : unique) new_names.insert(n);
  check(userlist_changed == (old_names != new_names),
        "the user list is said to change when the names do not, or the other way round");

  for (ConnId c : m.live) {
    auto it = m.partners.find(c);
    const std::set<ConnId> expected = it == m.partners.end() ? std::set<ConnId>() : it->second;
    check(router.partners_of(c) == expected, "call partners differ from the offers relayed");
    for (ConnId p : expected) check(m.live.contains(p), "a call partner that is gone");
    check(router.held_candidates(c) <= kMaxHeld, "more candidates held than the limit");
    for (ConnId r : router.offered_to(c)) {
      check(g_relay, "an untargeted offer pending without the mode");
      check(m.live.contains(r) && r != c, "an untargeted offer pending for someone gone, or back");
    }
  }
}

void on_message(signaling::Router& router, Model& m, ConnId from, std::string_view text,
                std::int64_t now, Effects& fx) {
  const std::map<ConnId, std::string> names = names_of(router, m);
  const std::set<ConnId> partners = m.partners[from];
  router.receive(from, text, now, fx);

  // What the sender meant (the router's own parser: this checks routing, not parsing).
  std::string type;
  std::optional<std::string> target;
  bool is_chat = false;
  {
    auto parsed = protocol::parse_client(text, router.config().limits);
    if (auto* msg = std::get_if<protocol::ClientMessage>(&parsed)) {
      if (auto* sig = std::get_if<protocol::Signal>(msg)) {
        type = sig->type;
        target = sig->target;
      }
      is_chat = std::holds_alternative<protocol::Chat>(*msg);
    }
  }

  const std::string& sender = names.at(from);
  std::size_t relayed = 0, chats = 0;
  std::set<ConnId> chatted;
  for (const Effects::Send& s : fx.sends) {
    check(m.live.contains(s.to), "a message to a connection that is not open");
    auto msg = parse_sent(s);
    if (auto* chat = std::get_if<protocol::ChatMsg>(&msg)) {
      check(is_chat, "a chat message out of something that was not one");
      check(!names.at(s.to).empty(), "a chat message to an unregistered client");
      check(chat->name == sender, "a chat message without the sender's name");
      check(chat->text.find_first_of("<>") == std::string::npos, "markup left in a chat message");
      check(chatted.insert(s.to).second, "a chat message delivered twice to one client");
      ++chats;
      continue;
    }
    auto* r = std::get_if<protocol::RelayedMsg>(&msg);
    if (r && s.to == from && r->type == "hang-up" && type == "video-offer" && target &&
        by_name(names, *target) == 0) {
      // The answer to an offer to someone who is not online.
      check(member(r->object.get(), "reason") == "user-unavailable",
            "the hang-up for an offer to no one does not say user-unavailable");
      check(r->name == *target, "the hang-up for an offer to no one does not name the target");
      continue;
    }
    if (s.to == from && !r) {
      check(std::holds_alternative<protocol::ErrorMsg>(msg) ||
                std::holds_alternative<protocol::RejectUsernameMsg>(msg),
            "the sender gets something other than an error, its new name or a message");
      continue;
    }
    check(r != nullptr, "a client gets another client's error, name or id");
    check(!sender.empty(), "a message relayed from an unregistered client");
    check(!names.at(s.to).empty(), "a message relayed to an unregistered client");
    check(r->type == type, "a relayed message of another type than the one sent");
    check(r->name == sender, "a relayed message without the sender's name");
    check(member(r->object.get(), "name") == sender,
          "a relayed message whose `name` is not the sender's");
    if (target) {
      check(s.to == by_name(names, *target), "a message relayed to someone other than its target");
    } else {
      check(protocol::is_call_signal(type), "an untargeted message of an application type relayed");
      check(partners.size() == 1 && s.to == *partners.begin(),
            "an untargeted message relayed to someone other than the only call partner");
    }
    ++relayed;
    if (s.to != from) {
      if (type == "video-offer") {
        m.partners[from].insert(s.to);
        m.partners[s.to].insert(from);
      } else if (type == "hang-up") {
        m.unpair(from, s.to);
      }
    }
  }
  check(relayed <= 1, "one message relayed more than once");
  check(chats == 0 || chats == router.registered_count(),
        "a chat message that did not reach every registered client");
  check(fx.relayed == relayed + chats, "the relayed count differs from the messages relayed");
  for (const Effects::Close& cl : fx.closes)
    check(cl.conn == from, "a message closes another client");
  check(fx.refused.size() <= 1, "one message refused twice");
}

// The untargeted mode. The model does not predict the pairing here: call partners are the
// router's (checked symmetric and live), and what each message may reach is bounded by them
// and by who an untargeted offer rang:
//  - a message reaches others as one relay (its own type, the sender's name), except an
//    untargeted offer of a client in no call (every other registered client, once each) and
//    an untargeted hang-up of a caller still unanswered (those its offer rang);
//  - a targeted message goes to its target only; an untargeted one to the only call partner,
//    or (offer) everyone, or (answer, hang-up) a caller whose pending offer rang the sender;
//  - an answer that pairs its sender ends the sender's own pending offer: the others it rang get
//    a hang-up answered-elsewhere in its name;
//  - what goes back to the sender is an error, a changed name, a chat, a hang-up (an offer to
//    no one, a late answer), or, when its answer pairs a call, the caller's held candidates
//    (with the caller's name);
//  - no client holds more than the limit of candidates.
void on_message_relay(signaling::Router& router, Model& m, ConnId from, std::string_view text,
                      std::int64_t now, Effects& fx) {
  const std::map<ConnId, std::string> names = names_of(router, m);
  const std::set<ConnId> partners = router.partners_of(from);
  const std::set<ConnId> rang_by_me = router.offered_to(from);
  std::set<ConnId> rang_me;  // callers whose pending offer rang `from`
  for (ConnId c : m.live) {
    if (router.offered_to(c).contains(from)) rang_me.insert(c);
  }
  router.receive(from, text, now, fx);

  std::string type;
  std::optional<std::string> target;
  bool is_chat = false;
  {
    auto parsed = protocol::parse_client(text, router.config().limits);
    if (auto* msg = std::get_if<protocol::ClientMessage>(&parsed)) {
      if (auto* sig = std::get_if<protocol::Signal>(msg)) {
        type = sig->type;
        target = sig->target;
      }
      is_chat = std::holds_alternative<protocol::Chat>(*msg);
    }
  }
  const std::string& sender = names.at(from);
  std::set<std::string> caller_names;
  for (ConnId c : rang_me) caller_names.insert(names.at(c));
  std::multiset<ConnId> relayed_to;
  std::size_t chats = 0, back = 0;
  for (const Effects::Send& s : fx.sends) {
    check(m.live.contains(s.to), "a message to a connection that is not open");
    auto msg = parse_sent(s);
    if (auto* chat = std::get_if<protocol::ChatMsg>(&msg)) {
      check(is_chat && chat->name == sender, "a chat message out of something else");
      ++chats;
      continue;
    }
    auto* r = std::get_if<protocol::RelayedMsg>(&msg);
    // A message targeted at its own sender comes back as sent: checked as any relay below.
    const bool to_self = target && by_name(names, *target) == from;
    if (s.to == from && !(to_self && r && r->type == type && r->name == sender)) {
      if (!r) continue;                    // an error or a changed name
      if (r->type == "hang-up") continue;  // an offer to no one, a late answer
      check(type == "video-answer" && r->type == "new-ice-candidate" &&
                caller_names.contains(r->name),
            "the sender gets a relayed message other than a hang-up or its caller's candidates");
      ++back;
      continue;
    }
    check(r != nullptr, "a client gets another client's error, name or id");
    if (type == "video-answer" && r->type == "hang-up" && rang_by_me.contains(s.to)) {
      // The sender's answer paired it: its own pending offer ends for the others it rang.
      check(r->name == sender && member(r->object.get(), "reason") == "answered-elsewhere",
            "the end of an answerer's own offer is not its answered-elsewhere hang-up");
      continue;
    }
    check(!sender.empty() && !names.at(s.to).empty(), "a relay from or to an unregistered client");
    check(r->type == type && r->name == sender && member(r->object.get(), "name") == sender,
          "a relayed message of another type or without the sender's name");
    if (target) {
      check(s.to == by_name(names, *target), "a message relayed to someone other than its target");
    } else {
      check(protocol::is_call_signal(type), "an untargeted message of an application type relayed");
      bool ok = partners.size() == 1 && s.to == *partners.begin();
      ok |= partners.empty() && type == "video-offer";
      ok |= partners.empty() && type == "hang-up" && rang_by_me.contains(s.to);
      ok |= partners.empty() && (type == "video-answer" || type == "hang-up") &&
            rang_me.contains(s.to);
      check(ok, "an untargeted message relayed to someone neither partner, rung nor caller");
    }
    relayed_to.insert(s.to);
  }
  for (ConnId c : relayed_to) check(relayed_to.count(c) == 1, "one message relayed twice to one");
  if (relayed_to.size() > 1) {
    check(!target && partners.empty() && (type == "video-offer" || type == "hang-up"),
          "a message relayed to several clients that is not an untargeted offer or hang-up");
  }
  if (!target && partners.empty() && type == "video-offer" && !relayed_to.empty()) {
    std::set<ConnId> others;
    for (const auto& [c, n] : names) {
      if (!n.empty() && c != from) others.insert(c);
    }
    check(std::set<ConnId>(relayed_to.begin(), relayed_to.end()) == others,
          "an untargeted offer that does not reach every other registered client");
  }
  check(fx.relayed == relayed_to.size() + back + chats,
        "the relayed count differs from the messages relayed");
  for (const Effects::Close& cl : fx.closes)
    check(cl.conn == from, "a message closes another client");
  for (ConnId c : m.live) {
    std::set<ConnId> p = router.partners_of(c);
    for (ConnId q : p) check(router.partners_of(q).contains(c), "call partners not both ways");
    m.partners[c] = p;
  }
}

void run_script(std::string_view script) {
  g_script = script;
  g_line = 0;
  signaling::RouterConfig config;
  // Low limits, so that rate limiting and closing for abuse are reached by short scripts.
  config.max_messages_per_second = 50;
  config.burst = 8;
  config.max_bad_messages = 4;
  config.max_rate_strikes = 5;
  config.token = kToken;
  config.limits.max_message_bytes = 16 * 1024;
  config.limits.max_depth = 8;
  g_relay = script.starts_with("U\n");
  config.relay_untargeted = g_relay;
  config.max_held_candidates = kMaxHeld;
  signaling::Router router(config);
  Model m;
  std::int64_t now = 1'000'000;

  std::string_view rest = script;
  while (!rest.empty()) {
    ++g_line;
    const std::size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    if (line.size() < 2) continue;
    const char op = line[0];
    const int slot = static_cast<unsigned char>(line[1]) % kSlots;
    const std::string_view arg = line.substr(2);
    ConnId& conn = m.slot[static_cast<std::size_t>(slot)];
    now += 1000;

    const std::map<ConnId, std::string> before = names_of(router, m);
    Effects fx;
    switch (op) {
      case 'c': {
        if (conn != 0) continue;
        conn = m.next_id++;
        m.live.insert(conn);
        router.connect(conn, arg != "!", now, fx);
        check(fx.sends.size() == 1 && fx.sends[0].to == conn,
              "a connection gets other than one id");
        auto msg = parse_sent(fx.sends[0]);
        auto* id = std::get_if<protocol::IdMsg>(&msg);
        check(id && id->id == conn, "a connection gets another id than its own");
        check(fx.closes.empty() && !fx.userlist_changed, "a connection changes more than itself");
        break;
      }
      case 'd': {
        if (conn == 0) continue;
        const ConnId gone = conn;
        const std::set<ConnId> partners = m.partners[gone];
        const std::string name = router.name_of(gone);
        const std::set<ConnId> rung = rung_with(router, m, gone);
        router.disconnect(gone, fx);
        check(fx.closes.empty(), "a departure asks for a close");
        check_departure_hang_ups(fx, 0, gone, partners, name, rung);
        for (ConnId p : partners) m.unpair(gone, p);
        m.partners.erase(gone);
        m.live.erase(gone);
        conn = 0;
        break;
      }
      case 'm':
        if (conn == 0) continue;
        if (g_relay) {
          on_message_relay(router, m, conn, arg, now, fx);
        } else {
          on_message(router, m, conn, arg, now, fx);
        }
        break;
      case 'r': {
        if (conn == 0 || arg.empty()) continue;
        const auto code = static_cast<protocol::ErrorCode>(static_cast<unsigned char>(arg[0]) %
                                                           protocol::kErrorCodeCount);
        router.refuse(conn, code, "refused by the transport", fx);
        for (const Effects::Send& s : fx.sends) {
          check(s.to == conn, "a refusal sends to someone else");
          auto msg = parse_sent(s);
          check(std::holds_alternative<protocol::ErrorMsg>(msg),
                "a refusal sends other than an error");
        }
        for (const Effects::Close& cl : fx.closes)
          check(cl.conn == conn, "a refusal closes someone else");
        check(fx.relayed == 0 && !fx.userlist_changed, "a refusal relays or renames");
        break;
      }
      case 't': {
        std::int64_t ms = 0;
        for (char ch : arg.substr(0, 7)) {
          if (ch < '0' || ch > '9') break;
          ms = ms * 10 + (ch - '0');
        }
        now += ms * 1000;
        continue;
      }
      default:
        continue;
    }
    const bool changed = fx.userlist_changed;
    bool closed_named = false;
    for (const Effects::Close& cl : fx.closes) closed_named |= !router.name_of(cl.conn).empty();
    apply_closes(router, m, fx);
    // A close of a registered client changes the list too (the server broadcasts it then).
    check_state(router, m, before, changed || closed_named);
  }
  Effects fx;
  for (ConnId& c : m.slot) {
    if (c != 0) router.disconnect(c, fx);
  }
  check(router.registered_count() == 0 && router.connection_count() == 0, "state left behind");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  run_script(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
