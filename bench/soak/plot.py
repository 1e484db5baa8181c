#!/usr/bin/python3
"""Plots the CSV samples of bench/soak's programs (cycle,seconds,threads,fds,rss_kib) as PNG.

    bench/soak/plot.py OUT.png TITLE FILE.csv

Three panels over the cycle number: threads, fds and RSS (MiB; with malloc's heap in use
when the CSV has it). The last row of a CSV is the
sample taken after settling; it is drawn as a marker. Needs python3-matplotlib (Debian).
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    out, title, path = sys.argv[1:]
    with open(path, newline="") as f:
        rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]
    if len(rows) < 2:
        print(f"{path}: fewer than two samples", file=sys.stderr)
        return 1
    run, settled = rows[:-1], rows[-1]
    cycles = [r["cycle"] for r in run]
    panels = [("threads", "threads", 1), ("fds", "open fds", 1), ("rss_kib", "MiB", 1 / 1024)]
    fig, axes = plt.subplots(3, 1, figsize=(8, 7.5), sharex=True)
    for ax, (key, label, scale) in zip(axes, panels):
        if key == "rss_kib" and run[0].get("heap_kib", -1) >= 0:
            ax.plot(cycles, [r["heap_kib"] * scale for r in run], lw=1.2, color="tab:green",
                    label="heap in use (mallinfo2)")
            ax.plot([settled["cycle"]], [settled["heap_kib"] * scale], "o", color="tab:green")
        ax.plot(cycles, [r[key] * scale for r in run], lw=1.2,
                label="RSS" if key == "rss_kib" else "during the run")
        ax.axhline(run[0][key] * scale, color="grey", ls="--", lw=0.8, label="baseline")
        ax.plot([settled["cycle"]], [settled[key] * scale], "o", color="tab:red",
                label="after settling")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.set_ylim(0, max(r[key] * scale for r in rows) * 1.15 + 1)
    axes[0].legend(loc="upper left", fontsize=8)
    axes[2].legend(loc="center right", fontsize=8)
    axes[-1].set_xlabel("cycle")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
