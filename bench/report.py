#!/usr/bin/env python3
"""Markdown tables and an SVG plot from bench/failover.py's JSON results.

usage: report.py OUT.md OUT.svg RESULT.json...
"""
import json, math, statistics, sys


def pct(xs, q):
    xs = sorted(xs)
    k = (len(xs) - 1) * q  # linear interpolation between closest ranks
    f, c = math.floor(k), math.ceil(k)
    return xs[f] if f == c else xs[f] + (xs[c] - xs[f]) * (k - f)


def label(r):
    return f"{r['nodes']} nodes, {r['heartbeat_ms']:g}/{r['timeout_ms']:g} ms"


def nodes(r):
    return f"{r['nodes']} (best case)" if r.get("best_case") else f"{r['nodes']}"


def main():
    md, svg, files = sys.argv[1], sys.argv[2], sys.argv[3:]
    runs = [json.load(open(f)) for f in files]
    out = []
    out.append("| nodes | h / T (ms) | trials | median ms | p95 ms | worst ms | best ms | bound h+2T (+4d) ms | median / bound | poll-observed median ms | load avg (start → end) |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        xs = [t["failover_ms"] for t in r["trials"]]
        if not xs:
            out.append(f"| {nodes(r)} | {r['heartbeat_ms']:g} / {r['timeout_ms']:g} | 0 | – | – | – | – | {r['bound_ms']:g} | – | – | {' '.join(r['load_start'])} → {' '.join(r.get('load_end', []))} |")
            continue
        ps = [t["poll_ms"] for t in r["trials"]]
        med = statistics.median(xs)
        out.append(f"| {nodes(r)} | {r['heartbeat_ms']:g} / {r['timeout_ms']:g} | {len(xs)} | {med:.0f} | {pct(xs, .95):.0f} | {max(xs):.0f} | {min(xs):.0f} | {r['bound_ms']:g} | {med / r['bound_ms']:.2f} | {statistics.median(ps):.0f} | {' '.join(r['load_start'])} → {' '.join(r.get('load_end', []))} |")
    out.append("")
    out.append("Messages per election (protocol messages sent by the survivors between the last status before the kill and the agreement, heartbeats excluded; `noticed` = survivors whose `heartbeat_timeout` timer fired, by rank, 1 = lowest ID):")
    out.append("")
    out.append("| nodes | h / T (ms) | trials | msgs min / median / max | by type (median over trials) | who noticed (rank 1 = lowest ID) | textbook best (1 ELECTION + n−2 COORDINATOR) / worst (lowest notices: n(n−1)/2 ELECTION + (n−1)(n−2)/2 ANSWER + n−2 COORDINATOR) |")
    out.append("|---|---|---|---|---|---|---|")
    for r in runs:
        tr = r["trials"]
        if not tr:
            continue
        ms = [t["protocol_messages"] for t in tr]
        types = sorted({k for t in tr for k in t["messages"]})
        bt = ", ".join(f"{k} {statistics.median([t['messages'].get(k, 0) for t in tr]):g}" for k in types)
        low = sum(1 for t in tr if 1 in t["rank_of_noticers"])
        top2 = sum(1 for t in tr if t["rank_of_noticers"] == [r["nodes"] - 1])
        cnt = [len(t["rank_of_noticers"]) for t in tr]
        seen_s = (f"lowest noticed in {low}/{len(tr)}; only the second-highest in {top2}/{len(tr)}; "
                  f"noticers per trial {min(cnt)}–{statistics.median(cnt):g}–{max(cnt)} (min–median–max)")
        n = r["nodes"]
        out.append(f"| {nodes(r)} | {r['heartbeat_ms']:g} / {r['timeout_ms']:g} | {len(tr)} | {min(ms)} / {statistics.median(ms):g} / {max(ms)} | {bt} | {seen_s} | {n - 1} / {n * (n - 1) // 2 + (n - 1) * (n - 2) // 2 + (n - 2)} |")
    # per-noticer breakdown
    out.append("")
    out.append("Messages by who noticed (the trials split by the lowest rank whose `heartbeat_timeout` timer fired):")
    out.append("")
    out.append("| nodes | h / T (ms) | lowest noticer rank | trials | msgs median (min–max) |")
    out.append("|---|---|---|---|---|")
    for r in runs:
        groups = {}
        for t in r["trials"]:
            k = min(t["rank_of_noticers"]) if t["rank_of_noticers"] else 0
            groups.setdefault(k, []).append(t["protocol_messages"])
        for k in sorted(groups):
            g = groups[k]
            out.append(f"| {nodes(r)} | {r['heartbeat_ms']:g} / {r['timeout_ms']:g} | {k or 'none'} | {len(g)} | {statistics.median(g):g} ({min(g)}–{max(g)}) |")
    idle_rows = [r for r in runs if r.get("idle")]
    if idle_rows:
        out.append("")
        out.append("Idle cost (settled cluster, nothing disturbed; CPU from /proc/PID/task/*/schedstat, RSS = VmRSS at the end):")
        out.append("")
        out.append("| nodes | h / T (ms) | window s | CPU % of a core, all nodes (mean / max) | followers (mean / max) | coordinator | RSS MiB per node (mean / max) | coordinator RSS MiB | load avg |")
        out.append("|---|---|---|---|---|---|---|---|---|")
        for r in idle_rows:
            i = r["idle"]
            top = max(x["id"] for x in i["nodes"])
            c = [x["cpu_pct"] for x in i["nodes"]]
            f = [x["cpu_pct"] for x in i["nodes"] if x["id"] != top]
            co = [x for x in i["nodes"] if x["id"] == top][0]
            m = [x["rss_kib"] / 1024 for x in i["nodes"]]
            out.append(f"| {nodes(r)} | {r['heartbeat_ms']:g} / {r['timeout_ms']:g} | {i['seconds']:.1f} | {statistics.mean(c):.2f} / {max(c):.2f} | {statistics.mean(f):.2f} / {max(f):.2f} | {co['cpu_pct']:.2f} | {statistics.mean(m):.1f} / {max(m):.1f} | {co['rss_kib'] / 1024:.1f} | {' '.join(i['load'])} |")
    open(md, "w").write("\n".join(out) + "\n")
    write_svg(svg, [r for r in runs if r["trials"]])


def write_svg(path, runs):
    W, PH, L, R, TOP = 760, 110, 190, 30, 40
    H = TOP + PH * len(runs) + 30
    e = []
    e.append(f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">')
    e.append(f'<rect width="{W}" height="{H}" fill="white"/>')
    e.append(f'<text x="{W/2}" y="20" text-anchor="middle" font-size="14">bully-node failover after kill -9 of the coordinator (each dot one trial)</text>')
    e.append(f'<text x="{W/2}" y="34" text-anchor="middle" fill="#555">blue: median · orange: p95 · red dashed: bound h+2T · grey dashed: 2T (lower bound)</text>')
    rnd = __import__("random").Random(0)
    for i, r in enumerate(runs):
        y0 = TOP + i * PH + 10
        xs = [t["failover_ms"] for t in r["trials"]]
        xmax = max(max(xs), r["bound_ms"]) * 1.1
        sx = lambda v: L + (W - L - R) * v / xmax
        ymid = y0 + 35
        e.append(f'<text x="10" y="{ymid}" >{label(r)}</text>')
        e.append(f'<text x="10" y="{ymid + 14}" fill="#555">{len(xs)} trials</text>')
        e.append(f'<line x1="{L}" y1="{y0 + 70}" x2="{W - R}" y2="{y0 + 70}" stroke="black"/>')
        step = 10 ** math.floor(math.log10(xmax / 4))
        for m in (1, 2, 5, 10):
            if xmax / (step * m) <= 8:
                step *= m
                break
        v = 0
        while v <= xmax:
            x = sx(v)
            e.append(f'<line x1="{x:.1f}" y1="{y0 + 70}" x2="{x:.1f}" y2="{y0 + 74}" stroke="black"/>')
            e.append(f'<text x="{x:.1f}" y="{y0 + 86}" text-anchor="middle">{v:g} ms</text>')
            v += step
        for val, col, dash in ((r["bound_ms"], "red", "5,3"), (r["lower_ms"], "#888", "3,3"),
                               (statistics.median(xs), "blue", ""), (pct(xs, .95), "orange", "")):
            x = sx(val)
            e.append(f'<line x1="{x:.1f}" y1="{y0}" x2="{x:.1f}" y2="{y0 + 70}" stroke="{col}" stroke-width="1.5" stroke-dasharray="{dash}"/>')
        for v in xs:
            e.append(f'<circle cx="{sx(v):.1f}" cy="{y0 + 15 + rnd.uniform(0, 45):.1f}" r="3" fill="black" fill-opacity="0.6"/>')
    e.append("</svg>")
    open(path, "w").write("\n".join(e) + "\n")


if __name__ == "__main__":
    main()
