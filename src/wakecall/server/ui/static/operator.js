// The operators' page at /ui: reads /ui/api/ with the bearer token kept in this tab
// (sessionStorage; a link may carry it as #token=...), and follows the owner's events as
// server-sent events read with fetch (EventSource cannot send the Authorization header).
"use strict";

(function () {
  const KEY = "wakecall.token";
  const byId = (id) => document.getElementById(id);

  function takeTokenFromLink() {
    const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
    if (!match) return;
    sessionStorage.setItem(KEY, decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }

  class NeedsToken extends Error {}

  class HttpSource {
    constructor() {
      this.token = sessionStorage.getItem(KEY);
      this.view = null;
      this.stream = null;
      byId("sign-out").addEventListener("click", () => this.signOut());
      byId("sign-in").addEventListener("submit", (e) => this.signIn(e));
    }

    zone() {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    }

    headers(extra) {
      const headers = { Accept: "application/json", ...(extra || {}) };
      if (this.token) headers.Authorization = `Bearer ${this.token}`;
      return headers;
    }

    async call(path, options) {
      const answer = await fetch(path, { ...options, headers: this.headers(options && options.headers) });
      if (answer.status === 401) {
        this.askForToken(this.token ? "That token was refused." : "");
        throw new NeedsToken("a bearer token is needed");
      }
      const body = await answer.json().catch(() => ({}));
      if (!answer.ok) throw new Error(body.error || `the server answered ${answer.status}`);
      return body;
    }

    load(taskId) {
      const query = taskId ? `?task_id=${encodeURIComponent(taskId)}` : "";
      return this.call(`/ui/api/dashboard${query}`);
    }

    act(kind, id) {
      const path = kind === "redeliver"
        ? `/ui/api/deliveries/${encodeURIComponent(id)}/redeliver`
        : `/ui/api/tasks/${encodeURIComponent(id)}/${kind}`;
      return this.call(path, { method: "POST", body: "{}", headers: { "Content-Type": "application/json" } });
    }

    askForToken(message) {
      byId("main").hidden = true;
      byId("sign-in").hidden = false;
      byId("sign-in-error").textContent = message || "";
      byId("sign-out").hidden = true;
      this.setLive("", false);
      byId("token").focus();
    }

    signIn(event) {
      event.preventDefault();
      this.token = byId("token").value.trim();
      sessionStorage.setItem(KEY, this.token);
      byId("token").value = "";
      byId("sign-in").hidden = true;
      this.begin();
    }

    signOut() {
      sessionStorage.removeItem(KEY);
      this.token = null;
      if (this.stream) this.stream.abort();
      this.askForToken("");
    }

    setLive(text, on) {
      const live = byId("live");
      live.textContent = text;
      live.classList.toggle("on", !!on);
    }

    rendered() {
      byId("sign-out").hidden = !this.token;
    }

    async begin() {
      try {
        const board = await this.load(this.view.selected);
        this.view.render(board);
        this.follow(board.cursor);
      } catch (err) {
        if (!(err instanceof NeedsToken)) this.view.toast(err.message || String(err), true);
      }
    }

    watch(view) {
      this.view = view;
      this.begin();
    }

    // Follow the event stream from `cursor`; on any event, read the dashboard again.
    async follow(cursor) {
      if (this.stream) this.stream.abort();
      const control = new AbortController();
      this.stream = control;
      let last = cursor;
      while (!control.signal.aborted) {
        try {
          const answer = await fetch(`/ui/api/events?after=${last}`, {
            headers: this.headers({ Accept: "text/event-stream" }), signal: control.signal,
          });
          if (answer.status === 401) { this.askForToken("That token was refused."); return; }
          if (!answer.ok || !answer.body) throw new Error(`events: ${answer.status}`);
          this.setLive("Live", true);
          for await (const message of readEvents(answer.body)) {
            if (message.event === "event") {
              last = Number(message.id);
              this.view.news(null);
            }
          }
        } catch (err) {
          if (control.signal.aborted) return;
        }
        this.setLive("Reconnecting…", false);
        await new Promise((resolve) => setTimeout(resolve, 2000));
      }
    }
  }

  // Server-sent events from a byte stream: yields {event, id, data}.
  async function* readEvents(body) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true }).replaceAll("\r\n", "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const message = { event: "message", id: null, data: "" };
        for (const line of block.split("\n")) {
          if (line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "event") message.event = value;
          else if (field === "id") message.id = value;
          else if (field === "data") message.data += (message.data ? "\n" : "") + value;
        }
        if (message.data || message.id) yield message;
      }
    }
  }

  takeTokenFromLink();
  window.WakecallView.start(new HttpSource());
})();
