// wakecall's task view: renders a Dashboard (see wakecall/server/ui/snapshot.py) and turns
// clicks into actions. Where the data comes from is a "source" (operator.js over HTTP, app.js
// through an MCP Apps host):
//   source.load(taskId)        -> Promise<Dashboard>
//   source.act(kind, id)       -> Promise   (kind: pause, resume, run_now, redeliver)
//   source.watch(view)         -> starts telling view.news(boardOrNull) of changes
//   source.zone()              -> the viewer's IANA time zone
// Every node is built with the DOM API (no HTML from data).
"use strict";

(function () {
  const STATUS_WORDS = {
    success: "success", failure: "failed", timeout: "timed out", cancelled: "cancelled",
    skipped: "skipped", missed: "missed", queued: "queued", running: "running",
    active: "active", paused: "paused", completed: "completed", expired: "expired",
    pending: "retrying", failed: "dead-lettered", delivered: "delivered",
  };

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function byId(id) { return document.getElementById(id); }

  // --- times and durations -----------------------------------------------------------------
  let locale;  // the viewer's language and region; the browser's unless a host says

  function formatter(zone, withZone) {
    const options = {
      timeZone: zone, weekday: "short", day: "numeric", month: "short",
      hour: "2-digit", minute: "2-digit", hourCycle: "h23",
    };
    if (withZone) options.timeZoneName = "short";
    try {
      return new Intl.DateTimeFormat(locale, options);
    } catch (_) {
      return new Intl.DateTimeFormat(locale, { ...options, timeZone: "UTC" });
    }
  }

  // "Paris time" for Europe/Paris, "UTC" for UTC.
  function placeName(zone) {
    if (!zone.includes("/")) return zone;
    return `${zone.slice(zone.lastIndexOf("/") + 1).replaceAll("_", " ")} time`;
  }

  function duration(ms) {
    if (ms === null || ms === undefined) return "";
    if (ms < 1000) return `${Math.round(ms)} ms`;
    const s = ms / 1000;
    if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
    const m = Math.floor(s / 60);
    const rest = Math.round(s - m * 60);
    if (m < 60) return rest ? `${m} min ${rest} s` : `${m} min`;
    const h = Math.floor(m / 60);
    return `${h} h ${m - h * 60} min`;
  }

  function relative(iso, now) {
    const diff = (Date.parse(iso) - Date.parse(now)) / 1000;
    const abs = Math.abs(diff);
    const rtf = new Intl.RelativeTimeFormat(locale, { numeric: "auto" });
    if (abs < 45) return rtf.format(Math.round(diff), "second");
    if (abs < 2700) return rtf.format(Math.round(diff / 60), "minute");
    if (abs < 64800) return rtf.format(Math.round(diff / 3600), "hour");
    return rtf.format(Math.round(diff / 86400), "day");
  }

  class View {
    constructor(source) {
      this.source = source;
      this.board = null;
      this.selected = null;
      this.loading = null;
      this.viewerZone = source.zone();
      this.viewerTime = formatter(this.viewerZone, false);
      byId("refresh").addEventListener("click", () => this.refresh());
      byId("task-rows").addEventListener("keydown", (e) => this.onRowKey(e));
    }

    // The viewer's zone and language, as a host gives them.
    setViewer(zone, language) {
      if (language) {
        try {
          locale = new Intl.Locale(language).toString();
        } catch (_) { /* keep the browser's */ }
      }
      if (zone) this.viewerZone = zone;
      this.viewerTime = formatter(this.viewerZone, false);
      if (this.board) this.render(this.board);
    }

    // A <time> in the viewer's zone; hover or focus shows it in the task's zone.
    time(iso, taskZone, focusable) {
      const moment = new Date(iso);
      const there = formatter(taskZone, true).format(moment);
      return el("time", {
        class: "t", datetime: iso, tabindex: focusable ? "0" : null,
        "data-task-time": `${there} (${taskZone})`,
        title: `${there} in the task's zone, ${taskZone}`,
        "aria-label": `${this.viewerTime.format(moment)} your time; ${there} in ${taskZone}`,
      }, this.viewerTime.format(moment));
    }

    async refresh(taskId) {
      if (taskId !== undefined) this.selected = taskId;
      const asked = this.selected;
      const loading = this.source.load(asked);
      this.loading = loading;
      try {
        const board = await loading;
        if (this.loading === loading) this.render(board);
      } catch (err) {
        if (this.loading === loading) this.toast(err.message || String(err), true);
      }
    }

    // A change the source heard of: a fresh board, or null to read one.
    news(board) {
      if (board && board.selected === this.selected) {
        this.render(board, true);
        return;
      }
      clearTimeout(this.newsTimer);
      this.newsTimer = setTimeout(() => this.refresh(), 150);
    }

    async act(kind, id, label, button) {
      // A disabled button loses the focus: give it back to its successor after the render.
      if (button) {
        this.focusAfter = button.dataset.focusKey;
        button.disabled = true;
      }
      try {
        await this.source.act(kind, id);
        this.toast(label);
        await this.refresh();
      } catch (err) {
        this.toast(err.message || String(err), true);
      } finally {
        if (button && button.isConnected) button.disabled = false;
      }
    }

    toast(text, bad) {
      const node = byId("toast");
      node.textContent = text;
      node.classList.toggle("bad", !!bad);
      node.classList.add("show");
      clearTimeout(this.toastTimer);
      this.toastTimer = setTimeout(() => node.classList.remove("show"), bad ? 8000 : 3000);
    }

    // Up and down arrows move between the tasks' names; Home and End to the first and last.
    onRowKey(event) {
      const names = [...document.querySelectorAll("#task-rows .task-name")];
      const at = names.indexOf(document.activeElement);
      if (at < 0) return;
      let next = null;
      if (event.key === "ArrowDown") next = names[Math.min(at + 1, names.length - 1)];
      else if (event.key === "ArrowUp") next = names[Math.max(at - 1, 0)];
      else if (event.key === "Home") next = names[0];
      else if (event.key === "End") next = names[names.length - 1];
      if (next) {
        event.preventDefault();
        next.focus();
      }
    }

    render(board, fromNews) {
      const before = this.board;
      this.board = board;
      this.selected = board.selected;
      const active = document.activeElement;
      const focusedId = this.focusAfter
        || (active && active.dataset ? active.dataset.focusKey : null);
      this.focusAfter = null;
      byId("main").hidden = false;
      byId("owner").textContent = `tasks of ${board.owner}`;
      byId("zone-note").textContent =
        `Times in your zone, ${this.viewerZone}; hover or focus one for the task's zone.`;
      this.renderTasks(board, before, fromNews);
      this.renderRuns(board);
      this.renderCallbacks(board);
      if (focusedId) {
        const again = document.querySelector(`[data-focus-key="${CSS.escape(focusedId)}"]`);
        if (again) again.focus();
      }
      document.body.dataset.cursor = String(board.cursor);
      if (this.source.rendered) this.source.rendered();
    }

    renderTasks(board, before, fromNews) {
      const rows = byId("task-rows");
      const lastRuns = new Map((before ? before.tasks : []).map((t) => [t.id, t.last_run && t.last_run.id]));
      byId("task-count").textContent = `(${board.tasks.length}${board.more_tasks ? "+" : ""})`;
      byId("no-tasks").hidden = board.tasks.length > 0;
      byId("tasks").hidden = board.tasks.length === 0;
      rows.replaceChildren(...board.tasks.map((task) => {
        const row = this.taskRow(task, board);
        const changed = before && fromNews && lastRuns.get(task.id) !== (task.last_run && task.last_run.id);
        if (changed) row.classList.add("flash");
        return row;
      }));
    }

    taskRow(task, board) {
      const selected = task.id === board.selected;
      const fire = task.next_fires[0];
      const next = fire
        ? el("div", {},
            this.time(fire.utc, task.timezone, true),
            el("span", { class: "sub" }, `${formatter(task.timezone, false).format(new Date(fire.utc))} ${placeName(task.timezone)} · ${relative(fire.utc, board.now)}`))
        : el("span", { class: "sub" }, task.status === "paused" ? "paused" : "none");
      const last = task.last_run
        ? el("div", {},
            el("span", { class: `badge s-${task.last_run.status}` }, STATUS_WORDS[task.last_run.status] || task.last_run.status),
            el("span", { class: "sub" }, relative(task.last_run.finished_at || task.last_run.created_at, board.now)))
        : el("span", { class: "sub" }, "not yet");
      const paused = task.status === "paused";
      const ended = task.status === "completed" || task.status === "expired";
      const toggle = ended ? null : el("button", {
        type: "button", class: "secondary", "data-action": paused ? "resume" : "pause",
        "data-focus-key": `toggle:${task.id}`,
        "aria-label": `${paused ? "Resume" : "Pause"} ${task.name}`,
        onclick: (e) => this.act(paused ? "resume" : "pause", task.id,
          `${paused ? "Resumed" : "Paused"} ${task.name}`, e.currentTarget),
      }, paused ? "Resume" : "Pause");
      const runNow = el("button", {
        type: "button", "data-action": "run_now", "data-focus-key": `run_now:${task.id}`,
        "aria-label": `Run ${task.name} now`,
        onclick: (e) => this.act("run_now", task.id, `Queued a run of ${task.name}`, e.currentTarget),
      }, "Run now");
      // One node per cell (the narrow layout puts the cell's label beside it).
      const cell = (label, className, ...children) =>
        el("td", { class: className, "data-label": label }, el("div", {}, ...children));
      return el("tr", { class: selected ? "selected" : null, "data-task-id": task.id },
        cell("Task", "cell-task",
          el("button", {
            type: "button", class: "task-name", "aria-pressed": selected ? "true" : "false",
            "data-focus-key": `select:${task.id}`,
            "aria-label": `${task.name}: show its runs`,
            onclick: () => this.refresh(task.id),
          }, task.name),
          el("span", { class: "sub id" }, task.id)),
        cell("Schedule", null,
          el("span", {}, task.schedule), " ", el("span", { class: "zone" }, task.timezone)),
        cell("Status", null,
          el("span", { class: `badge s-${task.status}` }, STATUS_WORDS[task.status] || task.status),
          task.pause_note ? el("span", { class: "sub" }, task.pause_note) : null,
          task.end_reason ? el("span", { class: "sub" }, task.end_reason.replaceAll("_", " ")) : null),
        cell("Next fire", null, next),
        cell("Last run", null, last),
        cell("Actions", "cell-actions", el("div", { class: "actions" }, toggle, runNow)));
    }

    renderRuns(board) {
      const task = board.tasks.find((t) => t.id === board.selected);
      const zone = task ? task.timezone : "UTC";
      byId("runs-of").textContent = task ? `of ${task.name}` : "";
      byId("no-runs").hidden = board.runs.length > 0;
      const longest = Math.max(1, ...board.runs.map((r) => r.duration_ms || 0));
      byId("run-strip").replaceChildren(...board.runs.slice().reverse().map((run) =>
        el("span", { class: `s-${run.status}`, title: `${STATUS_WORDS[run.status] || run.status} ${run.scheduled_for || run.created_at}` })));
      byId("run-list").replaceChildren(...board.runs.map((run) => {
        const meta = [];
        if (run.duration_ms !== null) meta.push(el("span", {}, `took ${duration(run.duration_ms)}`));
        if (run.late_ms !== null) meta.push(el("span", {}, run.late_ms >= 1 ? `started ${duration(run.late_ms)} late` : "started on time"));
        if (run.trigger !== "schedule") meta.push(el("span", {}, run.trigger === "manual" ? "run now" : run.trigger));
        if (run.max_attempts > 1) {
          meta.push(el("span", { class: run.attempt > 1 ? "retry" : null },
            run.attempt > 1 ? `retry: attempt ${run.attempt} of ${run.max_attempts}` : `attempt ${Math.max(run.attempt, 1)} of ${run.max_attempts}`));
        }
        const bar = run.duration_ms !== null
          ? el("div", { class: `bar-track s-${run.status}`, "aria-hidden": "true" }, el("div", { class: "bar" }))
          : null;
        if (bar) bar.firstChild.style.width = `${Math.max(1, Math.round(100 * Math.sqrt(run.duration_ms / longest)))}%`;
        return el("li", { class: `s-${run.status}`, "data-run-id": run.id },
          el("div", { class: "run-head" },
            el("span", { class: `badge s-${run.status}` }, STATUS_WORDS[run.status] || run.status),
            this.time(run.scheduled_for || run.created_at, zone, false),
            el("span", { class: "sub id" }, run.id)),
          bar,
          el("div", { class: "run-meta" }, meta),
          run.error_message ? el("p", { class: "run-error" }, run.error_message) : null);
      }));
    }

    renderCallbacks(board) {
      const zoneOf = new Map(board.tasks.map((t) => [t.id, t.timezone]));
      for (const [listId, countId, emptyId, rows] of [
        ["pending", "pending-count", "no-pending", board.pending],
        ["dead", "dead-count", "no-dead", board.dead],
      ]) {
        byId(countId).textContent = rows.length ? `(${rows.length})` : "";
        byId(emptyId).hidden = rows.length > 0;
        byId(listId).replaceChildren(...rows.map((d) => {
          const zone = zoneOf.get(d.task_id) || "UTC";
          const detail = [`${d.attempts} attempt${d.attempts === 1 ? "" : "s"}`];
          if (d.last_status) detail.push(`last answer ${d.last_status}`);
          const button = listId === "dead" ? el("button", {
            type: "button", class: "secondary", "data-action": "redeliver",
            "data-focus-key": `redeliver:${d.id}`,
            "aria-label": `Redeliver ${d.event} of ${d.task_name || d.task_id || "a deleted task"}`,
            onclick: (e) => this.act("redeliver", d.id, `Queued ${d.event} again`, e.currentTarget),
          }, "Redeliver") : null;
          return el("li", { "data-delivery-id": d.id },
            el("div", {},
              el("strong", {}, d.event), " of ", d.task_name || d.task_id || "a deleted task",
              el("span", { class: "sub url" }, d.url),
              el("span", { class: "sub" }, detail.join(", "),
                d.next_attempt_at && listId === "pending" ? [", next try ", this.time(d.next_attempt_at, zone, false)] : null),
              d.last_error ? el("span", { class: "err" }, d.last_error) : null),
            button);
        }));
      }
    }
  }

  window.WakecallView = {
    start(source) {
      const view = new View(source);
      source.watch(view);
      return view;
    },
    el,
  };
})();
