#!/usr/bin/env python3
"""Helpers of bench/suite.sh.

  suite_report.py sample RX_PID RX_DEV TX_PID TX_DEV WARM SECONDS
      Once the generator's frames leave TX_DEV, after WARM seconds, counts over
      SECONDS what RX_DEV received and TX_DEV sent (from /proc/PID/net/dev: PID
      is a process in the device's namespace) and every CPU's time split
      (/proc/stat); prints one JSON object.
  suite_report.py callgrind OUT_SMALL OUT_LARGE PACKETS_SMALL PACKETS_LARGE
      Instructions per packet from two callgrind runs of vnic-pipeline-bench
      (difference of the two, so start-up and warm-up cancel out).
  suite_report.py report RAW.jsonl OUT.json CHART_DIR PREFIX
      Results file, table on stdout, charts PREFIX-pps.png and PREFIX-latency.png.
  suite_report.py charts RESULTS.json CHART_DIR PREFIX
      The charts again, from a results file.
  suite_report.py markdown RESULTS.json
      The README's tables from a results file.
"""
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time


def dev_counts(pid, dev):
    """(rx_packets, tx_packets) of DEV in the namespace of process PID."""
    with open(f"/proc/{pid}/net/dev") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name.strip() == dev:
                v = rest.split()
                return int(v[1]), int(v[9])
    raise SystemExit(f"suite_report: no {dev} in /proc/{pid}/net/dev")


def cpu_times():
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if re.match(r"cpu\d+ ", line):
                v = [int(x) for x in line.split()[1:9]]
                out[line.split()[0]] = v
    return out


def cpu_split(a, b):
    """Per CPU, percent of the interval: usr, sys, irq, soft, idle, steal."""
    res = {}
    for cpu in a:
        d = [y - x for x, y in zip(a[cpu], b[cpu])]
        user, nice, system, idle, iowait, irq, softirq, steal = d
        tot = sum(d) or 1
        res[cpu] = {k: round(100 * v / tot, 1) for k, v in
                    (("usr", user + nice), ("sys", system), ("irq", irq), ("soft", softirq),
                     ("idle", idle + iowait), ("steal", steal))}
    return res


def sample(rx_pid, rx_dev, tx_pid, tx_dev, warm, seconds):
    """Waits (up to 5 s) until the generator's frames leave TX_DEV, then WARM
    seconds, then counts over SECONDS: received at RX_DEV, sent by TX_DEV."""
    t_start = time.monotonic()
    first = dev_counts(tx_pid, tx_dev)[1]
    while dev_counts(tx_pid, tx_dev)[1] - first < 1000 and time.monotonic() - t_start < 5:
        time.sleep(0.02)
    delay = time.monotonic() - t_start
    time.sleep(float(warm))
    r0, s0, c0, t0 = dev_counts(rx_pid, rx_dev)[0], dev_counts(tx_pid, tx_dev)[1], cpu_times(), time.monotonic()
    time.sleep(float(seconds))
    r1, s1, c1, t1 = dev_counts(rx_pid, rx_dev)[0], dev_counts(tx_pid, tx_dev)[1], cpu_times(), time.monotonic()
    print(json.dumps({"pps": round((r1 - r0) / (t1 - t0)), "offered": round((s1 - s0) / (t1 - t0)),
                      "packets": r1 - r0, "seconds": round(t1 - t0, 3), "start_delay": round(delay, 3),
                      "cpu": cpu_split(c0, c1)}))


def inclusive(path):
    out = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", path],
                         capture_output=True, text=True, check=True).stdout
    res = {}
    pats = {"worker_loop": r"InMemoryPipelineC9runWorker", "plain_loop": r"InMemoryPipelineC8runPlain",
            "worker_step": r"VnicDataplane6WorkerC8loopOnce", "plain_step": r":vnic_plain_forward "}
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+)\s", line)
        if not m:
            continue
        for k, p in pats.items():
            if k not in res and re.search(p, line):
                res[k] = int(m.group(1).replace(",", ""))
    return res


def callgrind(small, large, n_small, n_large):
    a, b = inclusive(small), inclusive(large)
    dn = int(n_large) - int(n_small)
    per = {k: round((b[k] - a[k]) / dn, 1) for k in a if k in b}
    print(json.dumps({"instructions_per_packet": per, "packets": [int(n_small), int(n_large)]}))


def fig(xs):
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "runs": xs}


def median_cpu(cpus):
    """Median per CPU and field over runs."""
    out = {}
    for cpu in cpus[0]:
        out[cpu] = {k: round(statistics.median(c[cpu][k] for c in cpus), 1) for k in cpus[0][cpu]}
    return out


CDF_PERCENTS = [0, 1] + list(range(2, 100, 2)) + [99, 99.5, 99.9, 100]


def pct(samples, p):
    s = sorted(samples)
    return round(s[min(len(s) - 1, max(0, int(round(p / 100 * len(s))) - 1))] / 1000, 2)


def cdf_points(samples):
    s = sorted(samples)
    n = len(s)
    pts = []
    for p in CDF_PERCENTS:
        i = min(n - 1, max(0, int(round(p / 100 * n)) - 1)) if p > 0 else 0
        pts.append([p, round(s[i] / 1000, 2)])
    return pts


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem = next((int(l.split()[1]) // 1024 for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
    return {"host": platform.node(), "kernel": platform.release(), "cpus": os.cpu_count(), "cpu": cpu,
            "memory_mib": mem, "os": next((l.split("=", 1)[1].strip().strip('"') for l in open("/etc/os-release")
                                           if l.startswith("PRETTY_NAME")), "?")}


def report(raw, out, chart_dir, prefix):
    recs = [json.loads(l) for l in open(raw) if l.strip()]
    meta = next(r for r in recs if r["kind"] == "meta")
    systems = [r for r in recs if r["kind"] == "system"]
    order = [s["name"] for s in systems]
    res = {"benchmark": "bench/suite.sh: forwarding of every system with the same frames and generator core",
           "machine": machine(), **{k: v for k, v in meta.items() if k != "kind"}}
    res["systems"] = {s["name"]: {k: v for k, v in s.items() if k not in ("kind", "name")} for s in systems}
    for r in recs:
        if r["kind"] == "end":
            res["finished"] = r["date"]
            res["load_average_after"] = r["load"]
            res["wall_seconds"] = r["wall_seconds"]

    gens = {}
    for r in recs:
        if r["kind"] == "gen":
            gens.setdefault(r["generator"], {"pps": [], "claimed": []})
            gens[r["generator"]]["pps"].append(r["pps"])
            gens[r["generator"]]["claimed"].append(r["offered"])
    res["generators"] = {
        "what": "one generator core (CPU 0), 64-byte frames from wire0 into uplink0 with nothing attached "
                "(the kernel drops them after the veth): received at uplink0 and sent by wire0, median of runs",
        **{g: fig(v["pps"]) | {"sent_pps": fig(v["claimed"])}
           for g, v in gens.items()},
        "chosen": meta.get("generator")}

    groups = {}
    for r in recs:
        if r["kind"] == "fwd":
            groups.setdefault((r["system"], r["direction"], r["size"], r["queues"]), []).append(r)
    rows = []
    for (sys_, d, size, q), rs in groups.items():
        pps = [x["pps"] for x in rs]
        row = {"system": sys_, "direction": d, "size": size, "queues": q,
               "median_pps": int(statistics.median(pps)), "min_pps": min(pps), "max_pps": max(pps), "runs": pps,
               "gbps_median": round(statistics.median(pps) * size * 8 / 1e9, 3),
               "cpu_median_percent": median_cpu([x["cpu"] for x in rs])}
        row["offered_pps_median"] = int(statistics.median(x["offered"] for x in rs))
        row["start_delay_max_s"] = max(x["start_delay"] for x in rs)
        rows.append(row)
    key = {n: i for i, n in enumerate(order)}
    rows.sort(key=lambda r: (r["direction"] != "wire-vm", r["queues"], key.get(r["system"], 99), r["size"]))
    res["forwarding"] = rows

    lat = {}
    for r in recs:
        if r["kind"] == "latency":
            s = r["samples_ns"]
            if s:
                lat[r["system"]] = {"sent": r["sent"], "received": r["received"], "lost": r["lost"],
                                    "p50_us": pct(s, 50), "p99_us": pct(s, 99),
                                    "p99.9_us": pct(s, 99.9), "max_us": round(max(s) / 1000, 2),
                                    "cdf_percent_us": cdf_points(s)}
            else:
                lat[r["system"]] = {"sent": r["sent"], "received": 0, "lost": r["lost"]}
    res["latency"] = {"what": "one-way wire0 -> VM1 (vnic0), 64-byte frames one at a time every "
                              f"{meta.get('latency_interval_us', 1000)} us (unloaded), AF_PACKET at both ends",
                      **lat}
    for r in recs:
        if r["kind"] == "callgrind":
            res["callgrind"] = {k: v for k, v in r.items() if k != "kind"}
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(res, f, indent=2)

    # Table.
    print(f"{'system':<26}{'dir':<9}{'size':>5}{'q':>3}{'median pps':>12}{'min':>10}{'max':>10}   cpu0 / cpu1 busy% (soft)")
    for r in rows:
        c = r["cpu_median_percent"]
        busy = " / ".join(f"{100 - v['idle']:.0f} ({v['soft']:.0f})" for _, v in sorted(c.items()))
        print(f"{r['system']:<26}{r['direction']:<9}{r['size']:>5}{r['queues']:>3}{r['median_pps']:>12,}"
              f"{r['min_pps']:>10,}{r['max_pps']:>10,}   {busy}")
    for s in systems:
        if s.get("status") != "ok":
            print(f"{s['name']}: {s.get('status')}: {s.get('reason', '')}")
    for g in gens:
        print(f"generator {g}: {res['generators'][g]['median']:,.0f} pps received (median)")
    for n, l in lat.items():
        if "p50_us" in l:
            print(f"latency {n}: p50 {l['p50_us']} us, p99 {l['p99_us']} us, lost {l['lost']}")
    if "callgrind" in res:
        print(f"callgrind instructions per packet: {res['callgrind'].get('instructions_per_packet')}")

    charts(res, order, chart_dir, prefix)
    print(f"written: {out}")


def charts(res, order, chart_dir, prefix):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("suite_report: matplotlib missing: no charts", file=sys.stderr)
        return
    os.makedirs(chart_dir, exist_ok=True)
    rows = [r for r in res["forwarding"] if r["direction"] == "wire-vm"]
    qs = sorted({r["queues"] for r in rows})
    sizes = sorted({r["size"] for r in rows})
    names = [n for n in order if any(r["system"] == n for r in rows)]
    fig, axes = plt.subplots(1, len(qs), figsize=(6.5 * len(qs), 4.8), squeeze=False, sharey=True)
    width = 0.8 / max(len(names), 1)
    for ax, q in zip(axes[0], qs):
        for i, n in enumerate(names):
            xs, ys, lo, hi, hatch = [], [], [], [], []
            for j, s in enumerate(sizes):
                r = next((r for r in rows if r["system"] == n and r["size"] == s and r["queues"] == q), None)
                if r:
                    xs.append(j + (i - (len(names) - 1) / 2) * width)
                    ys.append(r["median_pps"] / 1e6)
                    lo.append((r["median_pps"] - r["min_pps"]) / 1e6)
                    hi.append((r["max_pps"] - r["median_pps"]) / 1e6)
                    hatch.append("//" if r["median_pps"] >= 0.97 * r.get("offered_pps_median", 1e12) else "")
            bars = ax.bar(xs, ys, width, yerr=[lo, hi], capsize=2, color=f"C{i}", edgecolor="white", linewidth=0.5)
            for b, h in zip(bars, hatch):
                b.set_hatch(h)
        ax.set_xticks(range(len(sizes)))
        ax.set_xticklabels([f"{s} B" for s in sizes])
        ax.set_title(f"wire -> VM1, uplink with {q} queue{'s' if q > 1 else ''}")
        ax.set_xlabel("frame size")
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("Mpps received by VM1 (median, min-max)")
    from matplotlib.patches import Patch
    fig.legend(handles=[Patch(color=f"C{i}", label=n) for i, n in enumerate(names)],
               loc="lower center", ncol=len(names), fontsize=8, frameon=False)
    fig.text(0.99, 0.005, "hatched: received all the generator sent (generator-bound)", ha="right", fontsize=7)
    m = res["machine"]
    fig.suptitle(f"{m['cpus']}-core {m['cpu']}, Linux {m['kernel']}, generator {res['generators'].get('chosen')} on CPU 0",
                 fontsize=9)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(os.path.join(chart_dir, f"{prefix}-pps.png"), dpi=110)
    plt.close(fig)

    lat = {n: v for n, v in res["latency"].items() if isinstance(v, dict) and "cdf_percent_us" in v}
    if lat:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for n in [n for n in order if n in lat]:
            pts = lat[n]["cdf_percent_us"]
            ax.plot([p[1] for p in pts], [p[0] for p in pts], label=n)
        ax.set_xscale("log")
        ax.set_xlabel("one-way latency wire0 -> VM1 (us, log)")
        ax.set_ylabel("percent of frames")
        ax.set_title("forwarding latency CDF, 64-byte frames, unloaded", fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(chart_dir, f"{prefix}-latency.png"), dpi=110)
        plt.close(fig)


def markdown(results):
    """The README's tables from a results file."""
    res = json.load(open(results))
    rows = res["forwarding"]
    names = list(res["systems"])
    for d, title in (("wire-vm", "wire -> VM1"), ("vm-wire", "VM1 -> wire (anti-spoof direction)")):
        rs = [r for r in rows if r["direction"] == d]
        if not rs:
            continue
        cols = sorted({(r["queues"], r["size"]) for r in rs})
        print(f"| {title}, kpps median (min-max) | " + " | ".join(f"{s} B, {q}q" for q, s in cols) + " |")
        print("| --- |" + " --- |" * len(cols))
        for n in names:
            cells = []
            for q, s in cols:
                r = next((r for r in rs if r["system"] == n and r["queues"] == q and r["size"] == s), None)
                cells.append(f"{r['median_pps'] / 1e3:.0f} ({r['min_pps'] / 1e3:.0f}-{r['max_pps'] / 1e3:.0f})"
                             + ("*" if r["median_pps"] >= 0.97 * r["offered_pps_median"] else "") if r else "-")
            print(f"| {n} | " + " | ".join(cells) + " |")
        print()
    g = res["generators"]
    print(f"Generators, one core, 64 B into a veth: vnic-pktgen {g['vnic-pktgen']['median'] / 1e3:.0f} kpps, "
          f"trafgen {g['trafgen']['median'] / 1e3:.0f} kpps (median of {len(g['trafgen']['runs'])}).")
    lat = res["latency"]
    print()
    print("| latency wire0 -> VM1, 64 B, unloaded | p50 us | p99 us | p99.9 us | lost |")
    print("| --- | --- | --- | --- | --- |")
    for n in names:
        l = lat.get(n)
        if l and "p50_us" in l:
            print(f"| {n} | {l['p50_us']} | {l['p99_us']} | {l['p99.9_us']} | {l['lost']} of {l['sent']} |")
    cg = res.get("callgrind", {}).get("instructions_per_packet")
    if cg:
        print()
        print(f"callgrind, instructions per packet (in-memory, 64 B): vnicd worker step {cg['worker_step']:.0f} "
              f"(loop with driver {cg['worker_loop']:.0f}); plain C step {cg['plain_step']:.0f} "
              f"(loop with driver {cg['plain_loop']:.0f}).")


def charts_from(results, chart_dir, prefix):
    res = json.load(open(results))
    charts(res, list(res["systems"]), chart_dir, prefix)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"sample": sample, "callgrind": callgrind, "report": report, "charts": charts_from,
     "markdown": markdown}[cmd](*args)
