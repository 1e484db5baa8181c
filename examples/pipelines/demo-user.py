#!/usr/bin/python3
"""The demo's pipeline user: answers calls with a moving test pattern and a tone, and sends
each caller's own video back picture-in-picture.

    examples/pipelines/demo-user.py ws://localhost:8443/ws gstreamer [CA-FILE]

CA-FILE: for a wss:// server whose certificate is not signed by a known authority (a
self-signed one: give the certificate itself).

One compositor for every call: the webrtccall element encodes its input once and sends it to
all its calls, so every caller sees the same picture, the pattern with one inset per caller
(up to MAX_CALLS, one corner each). Before anyone calls it is the pattern alone. The callers'
audio is dropped (the element drops what nobody links). gst-launch-1.0 cannot do this: it
links the pads of the first call only, so the pad-added handler below links each call's
video to the compositor and pad-removed unlinks it when the call ends.

The element reconnects by itself when the signaling server restarts. SIGINT or SIGTERM stop
the pipeline (the element hangs up on every call) and exit 0.
"""
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

MAX_CALLS = 4
WIDTH, HEIGHT = 640, 480
INSET_W, INSET_H = 192, 144
MARGIN = 12
# Where the inset of each call goes: the four corners, top left first.
SLOTS = [
    (MARGIN, MARGIN),
    (WIDTH - INSET_W - MARGIN, MARGIN),
    (MARGIN, HEIGHT - INSET_H - MARGIN),
    (WIDTH - INSET_W - MARGIN, HEIGHT - INSET_H - MARGIN),
]

# compositor latency: how long it waits for a caller's frame. A received frame arrives after
# the element's jitter buffer (latency, 50 ms) and its decoder; a frame later than this is
# not shown.
PIPELINE = f"""
  webrtccall name=call signaling-server="{{server}}" username="{{name}}" max-calls={MAX_CALLS}
    {{ca_file}}
  compositor name=mix background=black ignore-inactive-pads=true latency=200000000
    ! video/x-raw,width={WIDTH},height={HEIGHT},framerate=30/1 ! videoconvert ! queue
    ! call.video_0
  videotestsrc is-live=true pattern=ball
    ! video/x-raw,width={WIDTH},height={HEIGHT},framerate=30/1 {{clock}} ! mix.sink_0
  audiotestsrc is-live=true wave=sine freq=440 volume=0.2 ! call.audio_0
"""


def log(text):
    print(f"demo-user: {text}", flush=True)


class DemoUser:
    def __init__(self, server, name, ca_file=None):
        # clockoverlay (the pango plugin: gstreamer1.0-x on Debian) is optional.
        clock = ""
        if Gst.ElementFactory.find("clockoverlay"):
            clock = '! clockoverlay time-format="%H:%M:%S" font-desc="Sans 28"'
        ca = f'signaller::tls-ca-file="{ca_file}"' if ca_file else ""
        self.pipeline = Gst.parse_launch(
            PIPELINE.format(server=server, name=name, clock=clock, ca_file=ca))
        self.call = self.pipeline.get_by_name("call")
        self.mix = self.pipeline.get_by_name("mix")
        self.insets = {}  # the element's source pad -> (bin, compositor pad, slot)
        self.call.connect("pad-added", self.on_pad_added)
        self.call.connect("pad-removed", self.on_pad_removed)
        bus = self.pipeline.get_bus()
        bus.add_signal_watch()
        bus.connect("message", self.on_message)
        self.loop = GLib.MainLoop()
        self.status = 0

    # A call's video arrives: scale it into a free corner of the compositor. Called from a
    # streaming thread; linking there is fine (data follows once this returns).
    def on_pad_added(self, _element, pad):
        if pad.get_property("kind") != "video":
            return  # audio: left unlinked, the element drops it
        used = {slot for (_, _, slot) in self.insets.values()}
        free = [i for i in range(len(SLOTS)) if i not in used]
        if not free:
            return
        slot = free[0]
        inset = Gst.parse_bin_from_description(
            "queue ! videoconvert ! videoscale ! capsfilter "
            f"caps=video/x-raw,width={INSET_W},height={INSET_H},pixel-aspect-ratio=1/1",
            True)
        self.pipeline.add(inset)
        sink = self.mix.request_pad_simple("sink_%u")
        xpos, ypos = SLOTS[slot]
        sink.set_property("xpos", xpos)
        sink.set_property("ypos", ypos)
        sink.set_property("zorder", 1 + slot)
        inset.get_static_pad("src").link(sink)
        inset.sync_state_with_parent()
        pad.link(inset.get_static_pad("sink"))
        self.insets[pad] = (inset, sink, slot)
        log(f"showing the video of {pad.get_property('peer')} in corner {slot + 1}")

    # The call ended (its stream got EOS): free the corner, in the main loop.
    def on_pad_removed(self, _element, pad):
        entry = self.insets.pop(pad, None)
        if entry:
            GLib.idle_add(self.remove_inset, entry)

    def remove_inset(self, entry):
        inset, sink, _ = entry
        inset.set_state(Gst.State.NULL)
        self.pipeline.remove(inset)
        self.mix.release_request_pad(sink)
        return GLib.SOURCE_REMOVE

    def on_message(self, _bus, msg):
        if msg.type == Gst.MessageType.ERROR:
            err, debug = msg.parse_error()
            log(f"error from {msg.src.get_name()}: {err.message} ({debug})")
            self.status = 1
            self.stop()
        elif msg.type == Gst.MessageType.WARNING:
            err, _ = msg.parse_warning()
            log(f"warning: {err.message}")
        elif msg.type == Gst.MessageType.ELEMENT:
            s = msg.get_structure()
            if s is None or not s.get_name().startswith("webrtccall-"):
                return
            event = s.get_name()[len("webrtccall-"):]
            if event == "users":
                return  # every user list: too chatty for the demo
            fields = ", ".join(f"{s.nth_field_name(i)}={s.get_value(s.nth_field_name(i))}"
                               for i in range(s.n_fields()))
            log(f"{event}: {fields}")

    def run(self):
        if self.pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            log("the pipeline did not start")
            return 1
        for sig in (signal.SIGINT, signal.SIGTERM):
            GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, self.stop)
        self.loop.run()
        return self.status

    def stop(self):
        # To NULL: the element hangs up on every call and leaves the server.
        self.pipeline.set_state(Gst.State.NULL)
        self.loop.quit()
        return GLib.SOURCE_CONTINUE


def main():
    if len(sys.argv) not in (3, 4):
        print(f"usage: {sys.argv[0]} SIGNALING-SERVER-URI NAME [CA-FILE]", file=sys.stderr)
        return 2
    Gst.init(None)
    if not Gst.ElementFactory.find("webrtccall"):
        print("webrtccall not found: set GST_PLUGIN_PATH to the build's gst-plugin directory",
              file=sys.stderr)
        return 1
    return DemoUser(*sys.argv[1:]).run()


if __name__ == "__main__":
    sys.exit(main())
