#include "router.h"

#include <algorithm>
#include <utility>

namespace signaling {

using protocol::ErrorCode;

Router::Router(RouterConfig config) : config_(std::move(config)) {}

void Router::send(Effects& fx, ConnId to, std::string text) {
  fx.sends.push_back({to, std::make_shared<const std::string>(std::move(text))});
}

void Router::connect(ConnId conn, bool authorized, std::int64_t now_us, Effects& fx) {
  Conn& c = conns_[conn];
  c.authorized = authorized || config_.token.empty();
  c.tokens = config_.burst;
  c.last_refill_us = now_us;
  send(fx, conn, protocol::make_id(conn));
}

bool Router::take_token(Conn& c, std::int64_t now_us) {
  if (now_us > c.last_refill_us) {
    double elapsed_s = static_cast<double>(now_us - c.last_refill_us) / 1e6;
    c.tokens = std::min(config_.burst, c.tokens + elapsed_s * config_.max_messages_per_second);
    c.last_refill_us = now_us;
  }
  if (c.tokens < 1.0) return false;
  c.tokens -= 1.0;
  return true;
}

void Router::refuse_message(ConnId id, Conn& c, ErrorCode code, std::string_view why, Effects& fx) {
  fx.refused.push_back(code);
  fx.events.push_back(
      {id, "refused", std::string(protocol::to_string(code)) + ": " + std::string(why)});
  switch (code) {
    case ErrorCode::kUserUnavailable:
    case ErrorCode::kNoTarget:
      // Legitimate races (the user just left, the call just ended): never counted as abuse.
      break;
    case ErrorCode::kTooLarge:
      send(fx, id, protocol::make_error(code, why));
      fx.closes.push_back({id, kCloseTooBig, "message too big"});
      return;
    default:
      if (++c.bad_messages > config_.max_bad_messages) {
        send(fx, id, protocol::make_error(code, why));
        fx.closes.push_back({id, kClosePolicy, "too many refused messages"});
        return;
      }
      break;
  }
  send(fx, id, protocol::make_error(code, why));
}

void Router::refuse(ConnId conn, ErrorCode code, std::string_view why, Effects& fx) {
  auto it = conns_.find(conn);
  if (it == conns_.end()) return;
  refuse_message(conn, it->second, code, why, fx);
}

void Router::receive(ConnId id, std::string_view text, std::int64_t now_us, Effects& fx) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  Conn& c = it->second;

  if (!take_token(c, now_us)) {
    fx.refused.push_back(ErrorCode::kRateLimited);
    // One error per burst of refusals: answering every refused message would let a
    // flooding client make the server flood it back.
    if (c.rate_strikes++ == 0) {
      send(fx, id,
           protocol::make_error(ErrorCode::kRateLimited,
                                "too many messages per second; message dropped"));
      fx.events.push_back({id, "refused", "rate-limited"});
    }
    if (c.rate_strikes > config_.max_rate_strikes) {
      fx.closes.push_back({id, kClosePolicy, "message rate limit exceeded"});
    }
    return;
  }
  c.rate_strikes = 0;

  protocol::ParseResult parsed = protocol::parse_client(text, config_.limits);
  if (auto* err = std::get_if<protocol::Error>(&parsed)) {
    refuse_message(id, c, err->code, err->message, fx);
    return;
  }
  protocol::ClientMessage& msg = std::get<protocol::ClientMessage>(parsed);
  if (auto* u = std::get_if<protocol::Username>(&msg)) {
    handle_username(id, c, *u, fx);
    return;
  }
  if (c.name.empty()) {
    refuse_message(id, c, ErrorCode::kUnregistered, "send `username` before anything else", fx);
    return;
  }
  if (auto* chat = std::get_if<protocol::Chat>(&msg)) {
    handle_chat(id, c, *chat, fx);
  } else {
    handle_signal(id, c, std::get<protocol::Signal>(msg), fx);
  }
}

std::string Router::unique_name(const std::string& wanted) const {
  if (!by_name_.contains(wanted)) return wanted;
  for (unsigned n = 1;; ++n) {
    std::string suffix = std::to_string(n);
    std::string base = wanted;
    // Keep the result within the name limit: shorten the base (on a character boundary).
    while (g_utf8_strlen(base.c_str(), static_cast<gssize>(base.size())) +
               static_cast<glong>(suffix.size()) >
           static_cast<glong>(protocol::kMaxNameChars)) {
      const char* prev = g_utf8_find_prev_char(base.c_str(), base.c_str() + base.size());
      base.resize(static_cast<std::size_t>(prev - base.c_str()));
    }
    std::string candidate = base + suffix;
    if (!by_name_.contains(candidate)) return candidate;
  }
}

void Router::handle_username(ConnId id, Conn& c, protocol::Username& msg, Effects& fx) {
  if (!c.authorized) {
    if (!msg.token || *msg.token != config_.token) {
      refuse_message(id, c, ErrorCode::kForbidden, "a valid `token` is required to register", fx);
      return;
    }
    c.authorized = true;
  }
  std::string why;
  std::optional<std::string> name = protocol::normalize_name(msg.name, &why);
  if (!name) {
    refuse_message(id, c, ErrorCode::kBadName, why, fx);
    return;
  }
  if (*name == c.name) return;  // already registered under this name

  std::string given = unique_name(*name);
  if (!c.name.empty()) by_name_.erase(c.name);
  std::string old = std::exchange(c.name, given);
  by_name_.emplace(given, id);
  fx.userlist_changed = true;
  if (given != *name) send(fx, id, protocol::make_reject_username(id, given));
  if (old.empty()) {
    fx.events.push_back({id, "registered", given});
  } else {
    fx.events.push_back({id, "renamed", old + " -> " + given});
  }
}

void Router::handle_chat(ConnId id, Conn& c, protocol::Chat& msg, Effects& fx) {
  (void)id;
  auto text = std::make_shared<const std::string>(
      protocol::make_chat(c.name, protocol::strip_markup(msg.text), msg.date.get()));
  for (const auto& [name, to] : by_name_) fx.sends.push_back({to, text});
  fx.relayed += by_name_.size();
}

void Router::pair(ConnId a, ConnId b) {
  if (a == b) return;
  conns_[a].partners.insert(b);
  conns_[b].partners.insert(a);
}

void Router::unpair(ConnId a, ConnId b) {
  if (auto it = conns_.find(a); it != conns_.end()) it->second.partners.erase(b);
  if (auto it = conns_.find(b); it != conns_.end()) it->second.partners.erase(a);
  // A call paired by an untargeted offer is over: later answers are no longer late.
  if (auto it = broadcasts_.find(a); it != broadcasts_.end() && it->second.answered_by == b) {
    broadcasts_.erase(it);
  }
  if (auto it = broadcasts_.find(b); it != broadcasts_.end() && it->second.answered_by == a) {
    broadcasts_.erase(it);
  }
}

void Router::handle_signal(ConnId id, Conn& c, protocol::Signal& msg, Effects& fx) {
  ConnId to = 0;
  if (msg.target) {
    auto found = by_name_.find(*msg.target);
    if (found == by_name_.end()) {
      if (!g_utf8_validate(msg.target->data(), static_cast<gssize>(msg.target->size()), nullptr)) {
        // An escaped lone surrogate: json-glib hands over bytes that are not UTF-8 (and names
        // nobody). Echoed in a hang-up they would come out mangled, naming no one either.
        refuse_message(id, c, ErrorCode::kMalformed, "`target` holds invalid Unicode", fx);
        return;
      }
      if (msg.type == "video-offer") {
        // Unmodified sample clients reset their call UI on hang-up, not on error.
        fx.refused.push_back(ErrorCode::kUserUnavailable);
        fx.events.push_back({id, "refused", "user-unavailable: " + *msg.target});
        send(fx, id, protocol::make_hang_up(*msg.target, c.name, "user-unavailable"));
      } else if (msg.type == "hang-up") {
        // Hanging up on someone who already left: nothing to do, nothing to report.
      } else {
        refuse_message(id, c, ErrorCode::kUserUnavailable,
                       "no user named \"" + *msg.target + "\" is online", fx);
      }
      return;
    }
    to = found->second;
    if (config_.relay_untargeted && to != id) {
      // A targeted answer or hang-up to an untargeted offer (the seed app keys its answer
      // `targetUsername`; the element answers with `target`).
      if (auto b = broadcasts_.find(to);
          b != broadcasts_.end() && b->second.offered_to.contains(id)) {
        if (msg.type == "video-answer" && !answer_broadcast(id, to, b->second, fx)) return;
        if (msg.type == "hang-up" && b->second.answered_by != id && !decline_broadcast(id, to, fx))
          return;
      }
      // The caller hangs up on one of those it offered to: that one may no longer answer.
      if (auto b = broadcasts_.find(id);
          msg.type == "hang-up" && b != broadcasts_.end() && b->second.answered_by == 0) {
        b->second.offered_to.erase(to);
        if (b->second.offered_to.empty()) end_broadcast(id, fx);
      }
    }
  } else {
    if (!protocol::is_call_signal(msg.type)) {
      refuse_message(id, c, ErrorCode::kNoTarget, msg.type + " has no `target`", fx);
      return;
    }
    if (c.partners.size() != 1) {
      if (config_.relay_untargeted && c.partners.empty() && relay_untargeted(id, c, msg, fx)) {
        return;
      }
      if (msg.type == "hang-up" && c.partners.empty()) return;
      refuse_message(id, c, ErrorCode::kNoTarget,
                     c.partners.empty()
                         ? msg.type + " has no `target` and there is no call to send it to"
                         : msg.type + " has no `target` and there are " +
                               std::to_string(c.partners.size()) + " calls; name one",
                     fx);
      return;
    }
    to = *c.partners.begin();
  }
  deliver(id, c, msg, to, fx);
}

void Router::deliver(ConnId id, Conn& c, protocol::Signal& msg, ConnId to, Effects& fx) {
  std::optional<std::string> text = protocol::stamp_name(msg.object.get(), c.name);
  if (!text) {
    refuse_message(id, c, ErrorCode::kMalformed, "message holds invalid Unicode (lone surrogate)",
                   fx);
    return;
  }
  if (msg.type == "video-offer") {
    pair(id, to);
  } else if (msg.type == "hang-up") {
    unpair(id, to);
  }
  send(fx, to, std::move(*text));
  fx.relayed++;
}

// ---- The untargeted mode (RouterConfig::relay_untargeted) ----

bool Router::relay_untargeted(ConnId id, Conn& c, protocol::Signal& msg, Effects& fx) {
  auto own = broadcasts_.find(id);
  bool calling = own != broadcasts_.end() && own->second.answered_by == 0;
  if (msg.type == "video-offer") {
    broadcast_offer(id, c, msg, fx);
    return true;
  }
  if (msg.type == "new-ice-candidate") {
    if (!calling) return false;
    std::optional<std::string> text = protocol::stamp_name(msg.object.get(), c.name);
    if (!text) {
      refuse_message(id, c, ErrorCode::kMalformed, "message holds invalid Unicode (lone surrogate)",
                     fx);
      return true;
    }
    Broadcast& b = own->second;
    if (b.held.size() >= config_.max_held_candidates ||
        b.held_bytes + text->size() > config_.max_held_candidate_bytes) {
      fx.held_dropped_limit++;
      if (!b.drop_logged) {
        b.drop_logged = true;
        fx.events.push_back({id, "held-candidates-dropped",
                             "over " + std::to_string(config_.max_held_candidates) +
                                 " candidates or " +
                                 std::to_string(config_.max_held_candidate_bytes) +
                                 " bytes before anyone answered"});
      }
      return true;
    }
    b.held_bytes += text->size();
    b.held.push_back(std::move(msg.object));
    return true;
  }
  if (msg.type == "hang-up") {
    if (calling) {
      // The caller gives up before anyone answered: everyone it rang is told.
      std::optional<std::string> text = protocol::stamp_name(msg.object.get(), c.name);
      if (text) {
        auto shared = std::make_shared<const std::string>(std::move(*text));
        for (ConnId to : own->second.offered_to) fx.sends.push_back({to, shared});
        fx.relayed += own->second.offered_to.size();
      }
      end_broadcast(id, fx);
      return true;
    }
    std::vector<ConnId> callers = broadcasts_to(id);
    if (callers.size() != 1) return false;  // dropped without a word, as without the mode
    if (decline_broadcast(id, callers[0], fx)) deliver(id, c, msg, callers[0], fx);
    return true;
  }
  if (msg.type == "video-answer") {
    std::vector<ConnId> callers = broadcasts_to(id);
    // Pending offers first: an answer goes to the one still unanswered.
    std::vector<ConnId> pending;
    for (ConnId caller : callers) {
      if (broadcasts_[caller].answered_by == 0) pending.push_back(caller);
    }
    if (pending.size() > 1 || (pending.empty() && callers.size() > 1)) {
      refuse_message(id, c, ErrorCode::kNoTarget,
                     "video-answer has no `target` and " + std::to_string(callers.size()) +
                         " users offered you a call; name one",
                     fx);
      return true;
    }
    if (callers.empty()) return false;
    ConnId caller = pending.empty() ? callers[0] : pending[0];
    if (answer_broadcast(id, caller, broadcasts_[caller], fx)) deliver(id, c, msg, caller, fx);
    return true;
  }
  return false;
}

void Router::broadcast_offer(ConnId id, Conn& c, protocol::Signal& msg, Effects& fx) {
  std::optional<std::string> text = protocol::stamp_name(msg.object.get(), c.name);
  if (!text) {
    refuse_message(id, c, ErrorCode::kMalformed, "message holds invalid Unicode (lone surrogate)",
                   fx);
    return;
  }
  std::set<ConnId> recipients;
  for (const auto& [name, to] : by_name_) {
    if (to != id) recipients.insert(to);
  }
  if (recipients.empty()) {
    refuse_message(id, c, ErrorCode::kNoTarget,
                   "video-offer has no `target` and nobody else is online", fx);
    return;
  }
  // A new offer replaces a pending one. Held candidates stay: a peer connection that offers
  // again does not gather them again (a new one's are ignored by the answerer's).
  Broadcast& b = broadcasts_[id];
  b.offered_to = recipients;
  auto shared = std::make_shared<const std::string>(std::move(*text));
  for (ConnId to : recipients) fx.sends.push_back({to, shared});
  fx.relayed += recipients.size();
  fx.untargeted_offers++;
  fx.events.push_back({id, "untargeted-offer",
                       "to " + std::to_string(recipients.size()) + " users (--relay-untargeted)"});
}

bool Router::answer_broadcast(ConnId id, ConnId caller, Broadcast& b, Effects& fx) {
  if (b.answered_by == id) return true;
  std::string name = name_of(id);
  if (b.answered_by != 0) {
    // Someone else was first: this one's call is over before it began.
    b.offered_to.erase(id);
    fx.late_answers++;
    fx.events.push_back(
        {id, "late-answer", "to " + name_of(caller) + ", answered by " + name_of(b.answered_by)});
    send(fx, id, protocol::make_hang_up(name_of(caller), name, "answered-elsewhere"));
    return false;
  }
  b.answered_by = id;
  pair(id, caller);
  const std::string caller_name = name_of(caller);
  for (auto& object : b.held) {
    // Valid when held (the same text stamped then): only the name differs.
    if (std::optional<std::string> text = protocol::stamp_name(object.get(), caller_name)) {
      send(fx, id, std::move(*text));
      fx.relayed++;
    }
  }
  b.held.clear();
  b.held_bytes = 0;
  fx.events.push_back({caller, "untargeted-answered", "by " + name});
  // The answerer had an untargeted offer of its own out (both called at once): it is in a
  // call now, so that offer ends; the others it rang are told, as for a late answer.
  if (auto own = broadcasts_.find(id); own != broadcasts_.end() && own->second.answered_by == 0) {
    for (ConnId to : own->second.offered_to) {
      if (to != caller)
        send(fx, to, protocol::make_hang_up(name, name_of(to), "answered-elsewhere"));
    }
    end_broadcast(id, fx);
  }
  return true;
}

bool Router::decline_broadcast(ConnId id, ConnId caller, Effects& fx) {
  auto it = broadcasts_.find(caller);
  if (it == broadcasts_.end()) return true;
  Broadcast& b = it->second;
  b.offered_to.erase(id);
  if (b.answered_by != 0) return false;     // the caller is in a call with someone else
  if (!b.offered_to.empty()) return false;  // others may still answer
  end_broadcast(caller, fx);                // the last one declined: the caller is told
  return true;
}

std::vector<ConnId> Router::broadcasts_to(ConnId id) const {
  std::vector<ConnId> callers;
  for (const auto& [caller, b] : broadcasts_) {
    if (b.answered_by != id && b.offered_to.contains(id)) callers.push_back(caller);
  }
  std::sort(callers.begin(), callers.end());
  return callers;
}

void Router::end_broadcast(ConnId caller, Effects& fx) {
  auto it = broadcasts_.find(caller);
  if (it == broadcasts_.end()) return;
  if (it->second.answered_by == 0) fx.held_dropped_ended += it->second.held.size();
  broadcasts_.erase(it);
}

void Router::disconnect(ConnId id, Effects& fx) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  Conn c = std::move(it->second);
  conns_.erase(it);
  std::set<ConnId> told;  // one hang-up each, whatever the reasons to tell them
  for (ConnId partner : c.partners) {
    auto p = conns_.find(partner);
    if (p == conns_.end()) continue;
    p->second.partners.erase(id);
    send(fx, partner, protocol::make_hang_up(c.name, p->second.name, "disconnected"));
    told.insert(partner);
  }
  // The untargeted mode: an unanswered offer of the caller ends, and everyone it rang is told.
  if (auto own = broadcasts_.find(id); own != broadcasts_.end()) {
    if (own->second.answered_by == 0) {
      for (ConnId to : own->second.offered_to) {
        if (auto p = conns_.find(to); p != conns_.end() && told.insert(to).second) {
          send(fx, to, protocol::make_hang_up(c.name, p->second.name, "disconnected"));
        }
      }
    }
    end_broadcast(id, fx);
  }
  // Offers that rang this user: it may no longer answer; when it was the last who could,
  // the caller is told, as if it declined.
  for (auto bc = broadcasts_.begin(); bc != broadcasts_.end();) {
    Broadcast& b = bc->second;
    ConnId caller = bc->first;
    if (b.answered_by == id) {
      bc = broadcasts_.erase(bc);  // the call is over; its caller got a hang-up above
      continue;
    }
    if (b.offered_to.erase(id) && b.answered_by == 0 && b.offered_to.empty()) {
      if (told.insert(caller).second) {
        send(fx, caller, protocol::make_hang_up(c.name, name_of(caller), "disconnected"));
      }
      fx.held_dropped_ended += b.held.size();
      bc = broadcasts_.erase(bc);
      continue;
    }
    ++bc;
  }
  if (!c.name.empty()) {
    by_name_.erase(c.name);
    fx.userlist_changed = true;
  }
}

std::string Router::userlist_message() const {
  std::vector<std::string> names;
  names.reserve(by_name_.size());
  for (const auto& [name, id] : by_name_) names.push_back(name);
  std::sort(names.begin(), names.end());
  return protocol::make_userlist(names);
}

std::vector<ConnId> Router::registered() const {
  std::vector<ConnId> ids;
  ids.reserve(by_name_.size());
  for (const auto& [name, id] : by_name_) ids.push_back(id);
  return ids;
}

std::string Router::name_of(ConnId conn) const {
  auto it = conns_.find(conn);
  return it == conns_.end() ? std::string() : it->second.name;
}

std::set<ConnId> Router::partners_of(ConnId conn) const {
  auto it = conns_.find(conn);
  return it == conns_.end() ? std::set<ConnId>() : it->second.partners;
}

std::set<ConnId> Router::offered_to(ConnId caller) const {
  auto it = broadcasts_.find(caller);
  return it == broadcasts_.end() ? std::set<ConnId>() : it->second.offered_to;
}

std::size_t Router::held_candidates(ConnId caller) const {
  auto it = broadcasts_.find(caller);
  return it == broadcasts_.end() ? 0 : it->second.held.size();
}

}  // namespace signaling
