// Ownership of GLib-family values made visible in types.
//
// GRef<T> holds one reference to a ref-counted value (GObject, JsonNode, GBytes,
// GSource, GMainContext, ...). Taking ownership is always explicit:
//   GRef<T>::adopt(p)  takes over a reference the caller already owns (transfer full)
//   GRef<T>::ref(p)    adds a reference (transfer none)
// GUnique<T> owns a non-ref-counted value freed by its type's free function (GError,
// g_malloc'd strings).
#pragma once

#include <gio/gio.h>
#include <glib-object.h>
#include <glib.h>
#include <json-glib/json-glib.h>

#include <memory>
#include <utility>

namespace gwc {

template <typename T, typename Enable = void>
struct RefTraits {
  // Any GObject.
  static T* ref(T* p) { return static_cast<T*>(g_object_ref(p)); }
  static void unref(T* p) { g_object_unref(p); }
};

#define GWC_DEFINE_REF_TRAITS(Type, ref_fn, unref_fn) \
  template <>                                         \
  struct RefTraits<Type> {                            \
    static Type* ref(Type* p) { return ref_fn(p); }   \
    static void unref(Type* p) { unref_fn(p); }       \
  }

GWC_DEFINE_REF_TRAITS(JsonNode, json_node_ref, json_node_unref);
GWC_DEFINE_REF_TRAITS(JsonObject, json_object_ref, json_object_unref);
GWC_DEFINE_REF_TRAITS(JsonArray, json_array_ref, json_array_unref);
GWC_DEFINE_REF_TRAITS(GBytes, g_bytes_ref, g_bytes_unref);
GWC_DEFINE_REF_TRAITS(GSource, g_source_ref, g_source_unref);
GWC_DEFINE_REF_TRAITS(GMainContext, g_main_context_ref, g_main_context_unref);
GWC_DEFINE_REF_TRAITS(GMainLoop, g_main_loop_ref, g_main_loop_unref);
GWC_DEFINE_REF_TRAITS(GUri, g_uri_ref, g_uri_unref);
GWC_DEFINE_REF_TRAITS(GVariant, g_variant_ref, g_variant_unref);

template <typename T>
class GRef {
 public:
  GRef() = default;
  GRef(std::nullptr_t) {}
  ~GRef() { reset(); }

  [[nodiscard]] static GRef adopt(T* p) {
    GRef r;
    r.p_ = p;
    return r;
  }
  [[nodiscard]] static GRef ref(T* p) {
    GRef r;
    r.p_ = p ? RefTraits<T>::ref(p) : nullptr;
    return r;
  }

  GRef(const GRef& o) : p_(o.p_ ? RefTraits<T>::ref(o.p_) : nullptr) {}
  GRef(GRef&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  GRef& operator=(const GRef& o) {
    if (this != &o) *this = GRef(o);
    return *this;
  }
  GRef& operator=(GRef&& o) noexcept {
    if (this != &o) {
      reset();
      p_ = std::exchange(o.p_, nullptr);
    }
    return *this;
  }

  void reset() {
    if (T* p = std::exchange(p_, nullptr)) RefTraits<T>::unref(p);
  }
  // Gives the reference away (transfer full to a C API).
  [[nodiscard]] T* release() { return std::exchange(p_, nullptr); }

  T* get() const { return p_; }
  T* operator->() const { return p_; }
  explicit operator bool() const { return p_ != nullptr; }
  bool operator==(const GRef& o) const { return p_ == o.p_; }

 private:
  T* p_ = nullptr;
};

struct GErrorFree {
  void operator()(GError* e) const { g_error_free(e); }
};
struct GFree {
  void operator()(void* p) const { g_free(p); }
};
struct GStrvFree {
  void operator()(char** p) const { g_strfreev(p); }
};

using GErrorPtr = std::unique_ptr<GError, GErrorFree>;
using GCharPtr = std::unique_ptr<char, GFree>;
using GStrvPtr = std::unique_ptr<char*, GStrvFree>;

// Collects a GError** out-parameter into a GErrorPtr:
//   GErrorPtr err; f(..., gwc::out(err));
class ErrorOut {
 public:
  explicit ErrorOut(GErrorPtr& target) : target_(target) {}
  ~ErrorOut() { target_.reset(raw_); }
  operator GError**() { return &raw_; }

 private:
  GErrorPtr& target_;
  GError* raw_ = nullptr;
};
inline ErrorOut out(GErrorPtr& e) {
  return ErrorOut(e);
}

// Main-context helpers. g_timeout_add() and g_idle_add() attach to the global default
// context, which is the wrong one for code running on a thread of its own (the element's
// signaling thread): these attach to the thread-default context instead.

// A timeout on the thread-default context. The caller owns the returned reference; cancel
// with clear_source().
inline GSource* add_timeout(guint interval_ms, GSourceFunc fn, gpointer data) {
  GSource* s = g_timeout_source_new(interval_ms);
  g_source_set_callback(s, fn, data, nullptr);
  g_source_attach(s, g_main_context_get_thread_default());
  return s;
}

// Destroys (if attached) and releases a source from add_timeout(); safe from its own callback.
inline void clear_source(GSource*& s) {
  if (s) {
    g_source_destroy(s);
    g_source_unref(s);
    s = nullptr;
  }
}

// Drops a GObject reference from the thread-default context's next iteration: for objects
// that are in the middle of emitting a signal we handle.
inline void unref_later(gpointer object) {
  GSource* s = g_idle_source_new();
  g_source_set_callback(
      s,
      [](gpointer o) -> gboolean {
        g_object_unref(o);
        return G_SOURCE_REMOVE;
      },
      object, nullptr);
  g_source_attach(s, g_main_context_get_thread_default());
  g_source_unref(s);
}

}  // namespace gwc
