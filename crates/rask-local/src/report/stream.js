// The task stream: one rectangle per task, a row per worker thread, x = time. Shared by the
// scheduler's live dashboard and the self-contained performance reports.
"use strict";
class TaskStream {
  constructor(canvas, tooltip) {
    this.canvas = canvas; this.ctx = canvas.getContext("2d"); this.tip = tooltip;
    this.records = []; this.rows = new Map(); this.view = null; this.drag = null;
    this.label = 90;
    canvas.addEventListener("wheel", ev => this.zoom(ev));
    canvas.addEventListener("mousedown", ev => { this.drag = { x: ev.clientX, v: this.current() }; });
    window.addEventListener("mouseup", () => { this.drag = null; });
    canvas.addEventListener("mousemove", ev => this.move(ev));
    canvas.addEventListener("dblclick", () => { this.view = null; this.draw(); });
  }
  static colour(prefix) {
    let h = 0; for (const c of prefix) h = (h * 31 + c.charCodeAt(0)) >>> 0;
    // Hues 70..330 only: reds and oranges (0..70, 330..360) mean transfers and spilling.
    return `hsl(${70 + h % 260}, 65%, 55%)`;
  }
  static get KIND_COLOURS() { return { transfer: "#dc2626", spill: "#f97316" }; }
  add(records, keep) {
    for (const r of records) { this.records.push(r); this.rowOf(r); }
    if (keep && this.records.length > keep) this.records.splice(0, this.records.length - keep);
    this.draw();
  }
  rowOf(r) {
    const id = r.worker + "/" + r.thread;
    if (!this.rows.has(id)) {
      this.rows.set(id, 0);
      const ids = [...this.rows.keys()].sort((a, b) => {
        const [wa, ta] = a.split("/").map(Number), [wb, tb] = b.split("/").map(Number);
        return wa - wb || ta - tb;
      });
      ids.forEach((k, i) => this.rows.set(k, i));
    }
    return this.rows.get(id);
  }
  // Everything kept, but at most the last minute, unless the user zoomed or panned.
  current() {
    if (this.view) return this.view;
    let end = 0; for (const r of this.records.slice(-5000)) end = Math.max(end, r.start_us + r.duration_us);
    const first = this.records.length ? this.records[0].start_us : end - 1e6;
    const start = Math.max(first, end - 60e6), pad = (end - start) * 0.02 + 1;
    return { start: start - pad, end: end + pad };
  }
  rowHeight(h) { return Math.min(24, (h - 16) / Math.max(this.rows.size, 1)); }
  draw() {
    const c = this.canvas, ctx = this.ctx, w = c.clientWidth, h = c.clientHeight;
    c.width = w * devicePixelRatio; c.height = h * devicePixelRatio;
    ctx.setTransform(devicePixelRatio, 0, 0, devicePixelRatio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    if (!this.records.length) return;
    const v = this.current(), rh = this.rowHeight(h), L = this.label;
    const x = t => L + (t - v.start) / (v.end - v.start) * (w - L);
    ctx.fillStyle = "#666"; ctx.font = "11px system-ui, sans-serif";
    for (const [id, row] of this.rows) {
      const [worker, thread] = id.split("/");
      const what = thread === "1000" ? "transfers" : thread === "1001" ? "disk" : "t" + thread;
      ctx.fillText(`worker ${worker} · ` + what, 2, row * rh + rh / 2 + 4);
    }
    for (const r of this.records) {
      const x0 = Math.max(x(r.start_us), L), x1 = x(r.start_us + r.duration_us);
      if (x1 < L || x0 > w) continue;
      // Transfers between workers in red and spilling to and from disk in orange, as in Dask.
      ctx.fillStyle = TaskStream.KIND_COLOURS[r.kind] || TaskStream.colour(r.prefix);
      ctx.fillRect(x0, this.rowOf(r) * rh + 2, Math.max(x1 - x0, 1), rh - 3);
    }
    ctx.fillStyle = "#666";
    ctx.fillText(((v.end - v.start) / 1e6).toFixed(3) + " s shown · double-click to reset", 4, h - 4);
  }
  at(ev) {
    const rect = this.canvas.getBoundingClientRect(), v = this.current(), L = this.label;
    return v.start + (ev.clientX - rect.left - L) / (rect.width - L) * (v.end - v.start);
  }
  zoom(ev) {
    ev.preventDefault();
    const v = this.current(), t = this.at(ev), k = ev.deltaY > 0 ? 1.25 : 0.8;
    this.view = { start: t - (t - v.start) * k, end: t + (v.end - t) * k }; this.draw();
  }
  move(ev) {
    if (this.drag) {
      const v = this.drag.v, dt = (ev.clientX - this.drag.x) / (this.canvas.clientWidth - this.label) * (v.end - v.start);
      this.view = { start: v.start - dt, end: v.end - dt }; this.draw(); return;
    }
    const rect = this.canvas.getBoundingClientRect(), v = this.current(), t = this.at(ev);
    const row = Math.floor((ev.clientY - rect.top) / this.rowHeight(rect.height));
    const slack = (v.end - v.start) / rect.width * 2;
    const r = this.records.find(r => this.rowOf(r) === row && r.start_us - slack <= t && t <= r.start_us + r.duration_us + slack);
    if (!r) { this.tip.style.display = "none"; return; }
    Object.assign(this.tip.style, { display: "block", left: ev.clientX + 12 + "px", top: ev.clientY + 12 + "px" });
    this.tip.textContent = `${r.key} · ${(r.duration_us / 1000).toFixed(3)} ms · worker ${r.worker} thread ${r.thread} · ${r.nbytes} bytes`;
  }
}
