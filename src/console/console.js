// The key-management console: a client of the admin API next to this file.
//
// Rules this file keeps (checked by tests):
// - The admin key lives in one variable of this closure. It is never written to the browser's local or session
//   storage, a cookie, the URL or the DOM; it travels only in the Authorization header of the API calls.
// - A new key is shown once, in the copy box; closing the box empties it and nothing else holds the key.
// - Text from the API is inserted as text (textContent, createTextNode, form values), never as HTML.
"use strict";

(() => {
  const base = document.documentElement.dataset.base || "./";
  const PAGE_SIZE = 100;
  const MAX_SORTED = 10000; // keys loaded at most to sort by last use
  const HOURS = 24;

  /** The admin key, in memory only. */
  let adminKey = null;
  /** The keys shown, and the cursor of the next page. */
  let items = [];
  let cursor = null;
  /** The key a dialog acts on. */
  let selected = null;

  const $ = (id) => document.getElementById(id);

  /** `node` with attributes and children; strings become text nodes, never HTML. */
  function build(node, attrs, children) {
    for (const [name, value] of Object.entries(attrs || {})) {
      if (/^on/i.test(name)) throw new Error("no event handler attributes");
      if (value === false || value === null || value === undefined) continue;
      node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children) {
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  /** An HTML element. */
  function el(tag, attrs, ...children) {
    return build(document.createElement(tag), attrs, children);
  }

  const SVG = "http://www.w3.org/2000/svg";

  /** An SVG element. */
  function svg(tag, attrs, ...children) {
    return build(document.createElementNS(SVG, tag), attrs, children);
  }

  // ------------------------------------------------------------------------------------------------------------
  // Talking to the API
  // ------------------------------------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  function problemText(res, data) {
    if (data && typeof data.detail === "string" && data.detail !== "") return data.detail;
    switch (res.status) {
      case 401: return "The key was not accepted.";
      case 403: return "The key lacks the scope keys:admin.";
      case 429: {
        const retry = res.headers.get("retry-after");
        return "Too many requests" + (retry ? "; try again in " + retry + " s." : ".");
      }
      case 503: return "The key store is unavailable; try again shortly.";
      default: return "The server answered " + res.status + ".";
    }
  }

  async function api(method, path, body) {
    if (adminKey === null) throw new ApiError(401, "You are signed out.");
    const headers = { Authorization: "Bearer " + adminKey, Accept: "application/json" };
    const init = { method, headers, cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(base + path, init);
    } catch (_) {
      throw new ApiError(0, "The server could not be reached.");
    }
    const text = await res.text();
    let data = null;
    if (text !== "") {
      try { data = JSON.parse(text); } catch (_) { data = null; }
    }
    if (!res.ok) throw new ApiError(res.status, problemText(res, data));
    return data;
  }

  // ------------------------------------------------------------------------------------------------------------
  // Messages
  // ------------------------------------------------------------------------------------------------------------

  function notice(text) {
    $("problem").hidden = true;
    $("notice").textContent = text;
  }

  function problem(text) {
    $("notice").textContent = "";
    $("problem").textContent = text;
    $("problem").hidden = false;
  }

  /** Shows an API failure; a 401 once signed in means the admin key stopped working. */
  function fail(error) {
    if (error instanceof ApiError && error.status === 401 && adminKey !== null) {
      signOut("Your key is no longer accepted (" + error.message + ") Sign in again.");
      return;
    }
    problem(error instanceof ApiError ? error.message : "Something went wrong: " + error);
  }

  // ------------------------------------------------------------------------------------------------------------
  // Signing in and out
  // ------------------------------------------------------------------------------------------------------------

  async function signIn(event) {
    event.preventDefault();
    const input = $("admin-key");
    const key = input.value.trim();
    input.value = "";
    const said = $("sign-in-problem");
    said.hidden = true;
    if (key === "") {
      said.textContent = "Paste an admin key.";
      said.hidden = false;
      return;
    }
    if (!/^[\x21-\x7e]+$/.test(key)) {
      // A header cannot carry it (the browser would refuse to send it), and no key looks like that.
      said.textContent = "This is not a key: keys are printable ASCII characters without spaces.";
      said.hidden = false;
      input.focus();
      return;
    }
    adminKey = key;
    try {
      await api("GET", "keys?limit=1");
    } catch (error) {
      adminKey = null;
      if (error.status === 401) {
        said.textContent = "This key was not accepted: it is unknown, revoked, expired or disabled.";
      } else if (error.status === 403) {
        said.textContent =
          "This key is valid, but it lacks the scope keys:admin, so it cannot manage keys. Sign in with an admin key.";
      } else {
        said.textContent = error.message;
      }
      said.hidden = false;
      input.focus();
      return;
    }
    $("sign-in").hidden = true;
    $("app").hidden = false;
    $("sign-out").hidden = false;
    notice("Signed in.");
    await refresh();
    $("issue-name").focus();
  }

  function signOut(message) {
    adminKey = null;
    items = [];
    cursor = null;
    selected = null;
    for (const dialog of document.querySelectorAll("dialog")) {
      if (dialog.open) dialog.close();
    }
    forgetSecret();
    $("keys").tBodies[0].replaceChildren();
    $("usage").hidden = true;
    $("usage-chart").replaceChildren();
    $("notice").textContent = "";
    $("problem").hidden = true;
    $("app").hidden = true;
    $("sign-out").hidden = true;
    $("sign-in").hidden = false;
    const said = $("sign-in-problem");
    said.textContent = typeof message === "string" ? message : "";
    said.hidden = typeof message !== "string";
    $("admin-key").focus();
  }

  // ------------------------------------------------------------------------------------------------------------
  // Listing
  // ------------------------------------------------------------------------------------------------------------

  function query(after) {
    const params = new URLSearchParams();
    const owner = $("filter-owner").value.trim();
    if (owner !== "") params.set("owner", owner);
    if ($("filter-kind").value !== "") params.set("kind", $("filter-kind").value);
    if ($("filter-status").value !== "") params.set("status", $("filter-status").value);
    if (after) params.set("after", after);
    params.set("limit", String(PAGE_SIZE));
    return "keys?" + params.toString();
  }

  /** Loads the first page again (every page, up to MAX_SORTED keys, when sorting by last use). */
  async function refresh() {
    try {
      const page = await api("GET", query(null));
      items = page.items;
      cursor = page.next;
      if ($("sort").value !== "id") {
        while (cursor && items.length < MAX_SORTED) {
          const next = await api("GET", query(cursor));
          items = items.concat(next.items);
          cursor = next.next;
        }
      }
      render();
    } catch (error) {
      fail(error);
    }
  }

  async function more() {
    try {
      const page = await api("GET", query(cursor));
      items = items.concat(page.items);
      cursor = page.next;
      render();
    } catch (error) {
      fail(error);
    }
  }

  function when(text) {
    if (!text) return "never";
    const date = new Date(text);
    if (Number.isNaN(date.getTime())) return text;
    return date.toISOString().slice(0, 16).replace("T", " ") + " UTC";
  }

  function lastUsed(item) {
    return item.last_used_at ? new Date(item.last_used_at).getTime() : -Infinity;
  }

  function sorted() {
    const list = items.slice();
    const sort = $("sort").value;
    if (sort === "idle") list.sort((a, b) => lastUsed(a) - lastUsed(b) || a.id.localeCompare(b.id));
    if (sort === "recent") list.sort((a, b) => lastUsed(b) - lastUsed(a) || a.id.localeCompare(b.id));
    return list;
  }

  function timeCell(text) {
    return el("td", text ? { class: "time", title: text } : { class: "time" }, when(text));
  }

  function actionButton(action, label, item, disabled, style) {
    const who = item.name || item.display_id;
    return el("button", { type: "button", class: style, "data-action": action, "aria-label": label + " " + who,
      disabled }, label);
  }

  function render() {
    const body = $("keys").tBodies[0];
    const rows = sorted().map((item) => {
      const revoked = item.status === "revoked";
      const rotated = item.rotated_to !== null && item.rotated_to !== undefined;
      const row = el("tr", { "data-id": item.id },
        el("td", { class: "name" }, item.name || "(no name)"),
        el("td", {}, item.kind),
        el("td", { class: "owner" }, item.owner),
        el("td", { class: "key" }, item.display_id),
        el("td", { class: "scopes" }, item.scopes.join(" ")),
        timeCell(item.created_at),
        timeCell(item.expires_at),
        timeCell(item.last_used_at),
        el("td", { class: "uses" }, String(item.usage_count)),
        el("td", { class: "status status-" + item.status }, item.status.replace("_", " ") +
          (item.enabled || revoked ? "" : " (disabled)") + (rotated && !revoked ? ", rotated" : "")),
        el("td", { class: "actions" },
          actionButton("usage", "Usage", item, false),
          actionButton("edit", "Edit", item, revoked),
          actionButton("rotate", "Rotate", item, revoked || rotated),
          actionButton("revoke", "Revoke", item, revoked, "danger")));
      return row;
    });
    body.replaceChildren(...rows);
    $("more").hidden = !cursor || $("sort").value !== "id";
    let note = items.length === 1 ? "1 key" : items.length + " keys";
    if (cursor) {
      note += $("sort").value === "id" ? " shown; there are more." : " loaded (the first " + MAX_SORTED +
        "); sorting covers these only.";
    }
    $("list-note").textContent = note;
  }

  function itemOf(button) {
    const row = button.closest("tr");
    return row ? items.find((item) => item.id === row.dataset.id) : undefined;
  }

  function onAction(event) {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const item = itemOf(button);
    if (!item) return;
    selected = item;
    const label = (item.name ? "\u201c" + item.name + "\u201d " : "") + "(" + item.display_id + ")";
    switch (button.dataset.action) {
      case "usage":
        showUsage(item);
        break;
      case "edit":
        openEdit(item);
        break;
      case "rotate":
        $("rotate-what").textContent = "A new key replaces " + label + ".";
        $("rotate-dialog").showModal();
        $("rotate-grace").focus();
        break;
      case "revoke":
        $("revoke-what").textContent = "Revoke " + label + ", owned by " + item.owner + "?";
        $("revoke-dialog").showModal();
        break;
    }
  }

  // ------------------------------------------------------------------------------------------------------------
  // Numbers from the forms
  // ------------------------------------------------------------------------------------------------------------

  /** A whole number of at least `min` from an input, null when empty; throws a message otherwise. */
  function whole(input, what, min) {
    const text = input.value.trim();
    if (text === "") return null;
    const n = Number(text);
    if (!Number.isSafeInteger(n) || n < min) throw new Error(what + ": a whole number of at least " + min + ".");
    return n;
  }

  function seconds(input, unit, what, min) {
    const n = whole(input, what, min);
    if (n === null) return null;
    const total = n * Number(unit.value);
    if (!Number.isSafeInteger(total)) throw new Error(what + ": too large.");
    return total;
  }

  function rateLimit(requestsInput, periodInput) {
    const requests = whole(requestsInput, "Rate limit", 1);
    if (requests === null) return null;
    const period = whole(periodInput, "Rate limit period", 1);
    if (period === null) throw new Error("Rate limit period: give the seconds the requests are counted over.");
    return { requests, period_seconds: period };
  }

  function scopesOf(input) {
    return input.value.split(/[\s,]+/).filter((s) => s !== "");
  }

  // ------------------------------------------------------------------------------------------------------------
  // The new-key box
  // ------------------------------------------------------------------------------------------------------------

  function showSecret(key, what) {
    $("secret-for").textContent = what;
    $("secret-copied").textContent = "";
    const box = $("secret-value");
    box.value = key;
    $("secret-dialog").showModal();
    box.focus();
    box.select();
  }

  function forgetSecret() {
    $("secret-value").value = "";
    $("secret-for").textContent = "";
    $("secret-copied").textContent = "";
  }

  async function copySecret() {
    const box = $("secret-value");
    try {
      await navigator.clipboard.writeText(box.value);
      $("secret-copied").textContent = "Copied to the clipboard.";
    } catch (_) {
      box.focus();
      box.select();
      $("secret-copied").textContent = "Selected: press Ctrl+C (or \u2318C) to copy.";
    }
  }

  // ------------------------------------------------------------------------------------------------------------
  // Issuing, rotating, revoking, editing
  // ------------------------------------------------------------------------------------------------------------

  async function issue(event) {
    event.preventDefault();
    let body;
    try {
      body = {
        name: $("issue-name").value.trim(),
        kind: $("issue-kind").value,
        owner: $("issue-owner").value.trim(),
        scopes: scopesOf($("issue-scopes")),
      };
      const expires = seconds($("issue-expires"), $("issue-expires-unit"), "Expires in", 1);
      if (expires !== null) body.expires_in_seconds = expires;
      const limit = rateLimit($("issue-limit"), $("issue-period"));
      if (limit !== null) body.rate_limit = limit;
    } catch (error) {
      problem(error.message);
      return;
    }
    try {
      const issued = await api("POST", "keys", body);
      const key = issued.key;
      delete issued.key;
      $("issue-form").reset();
      notice("Issued " + (issued.name || issued.display_id) + ".");
      showSecret(key, "For " + (issued.name || "(no name)") + ", owner " + issued.owner + ".");
      await refresh();
    } catch (error) {
      fail(error);
    }
  }

  async function rotate(event) {
    event.preventDefault();
    const item = selected;
    let grace;
    try {
      grace = seconds($("rotate-grace"), $("rotate-grace-unit"), "Grace period", 0);
      if (grace === null) throw new Error("Grace period: give a number (0 stops the old key at once).");
    } catch (error) {
      problem(error.message);
      return;
    }
    $("rotate-dialog").close();
    try {
      const issued = await api("POST", "keys/" + encodeURIComponent(item.id) + "/rotate", { grace_seconds: grace });
      const key = issued.key;
      delete issued.key;
      const until = new Date(Date.now() + grace * 1000).toISOString();
      notice("Rotated " + (item.name || item.display_id) + ": the old key works until " + when(until) + ".");
      showSecret(key, "Replaces " + item.display_id + ".");
      await refresh();
    } catch (error) {
      fail(error);
    }
  }

  async function revoke(event) {
    event.preventDefault();
    const item = selected;
    $("revoke-dialog").close();
    try {
      await api("POST", "keys/" + encodeURIComponent(item.id) + "/revoke");
      notice("Revoked " + (item.name || item.display_id) + ".");
      await refresh();
    } catch (error) {
      fail(error);
    }
  }

  function openEdit(item) {
    $("edit-title").textContent = "Edit " + (item.name || item.display_id);
    $("edit-name").value = item.name;
    $("edit-scopes").value = item.scopes.join(" ");
    $("edit-expiry").value = "keep";
    $("edit-expires").value = "";
    $("edit-limit").value = item.rate_limit ? String(item.rate_limit.requests) : "";
    $("edit-period").value = item.rate_limit ? String(item.rate_limit.period_seconds) : "60";
    $("edit-enabled").checked = item.enabled;
    $("edit-dialog").showModal();
    $("edit-name").focus();
  }

  async function saveEdit(event) {
    event.preventDefault();
    const item = selected;
    let body;
    try {
      body = {
        name: $("edit-name").value.trim(),
        scopes: scopesOf($("edit-scopes")),
        enabled: $("edit-enabled").checked,
        rate_limit: rateLimit($("edit-limit"), $("edit-period")),
      };
      const expiry = $("edit-expiry").value;
      if (expiry === "never") body.expires_at = null;
      if (expiry === "in") {
        const secs = seconds($("edit-expires"), $("edit-expires-unit"), "Expires in", 1);
        if (secs === null) throw new Error("Expires in: give a number.");
        body.expires_in_seconds = secs;
      }
    } catch (error) {
      problem(error.message);
      return;
    }
    $("edit-dialog").close();
    try {
      await api("PATCH", "keys/" + encodeURIComponent(item.id), body);
      notice("Saved " + (body.name || item.display_id) + ".");
      await refresh();
    } catch (error) {
      fail(error);
    }
  }

  // ------------------------------------------------------------------------------------------------------------
  // Usage
  // ------------------------------------------------------------------------------------------------------------

  async function showUsage(item) {
    let usage;
    try {
      usage = await api("GET", "keys/" + encodeURIComponent(item.id) + "/usage?hours=" + HOURS);
    } catch (error) {
      fail(error);
      return;
    }
    const hours = usage.hours;
    const total = hours.reduce((sum, h) => sum + h.count, 0);
    const peak = hours.reduce((best, h) => (h.count > best.count ? h : best), { count: 0, hour: null });
    $("usage-title").textContent = "Usage of " + (item.name || item.display_id) + ", last " + HOURS + " hours";
    $("usage-summary").textContent = total + (total === 1 ? " request" : " requests") +
      (peak.hour ? "; the busiest hour was " + when(peak.hour) + " with " + peak.count + "." : ".");
    $("usage-chart").replaceChildren(chart(hours, total));
    $("usage").hidden = false;
    await refresh(); // the list's counts and last-used times, as of the same moment
    $("usage").scrollIntoView({ block: "nearest" });
  }

  /** Requests per hour as bars, in inline SVG: each bar's title gives its hour and count. */
  function chart(hours, total) {
    const width = 480, height = 160, left = 32, bottom = 20, top = 8;
    const max = Math.max(1, ...hours.map((h) => h.count));
    const step = (width - left) / Math.max(1, hours.length);
    const plot = height - bottom - top;
    const root = svg("svg", {
      viewBox: "0 0 " + width + " " + height, role: "img", "data-total": total,
      "aria-label": "Requests per hour over the last " + hours.length + " hours: " + total + " in all",
    });
    root.append(svg("line", { x1: left, y1: top + plot, x2: width, y2: top + plot }));
    root.append(svg("text", { x: 2, y: top + 8 }, String(max)));
    root.append(svg("text", { x: 2, y: top + plot }, "0"));
    hours.forEach((h, i) => {
      const barHeight = h.count === 0 ? 0 : Math.max(1, (h.count / max) * plot);
      const x = left + i * step + 1;
      const bar = svg("rect", {
        class: "hour", x, y: top + plot - barHeight, width: Math.max(1, step - 2), height: barHeight,
        "data-hour": h.hour, "data-count": h.count,
      }, svg("title", {}, when(h.hour) + ": " + h.count + (h.count === 1 ? " request" : " requests")));
      root.append(bar);
      const last = i === hours.length - 1;
      if (i % 6 === 0 || last) {
        const label = { x: last ? width : x, y: height - 5, "text-anchor": last ? "end" : "start" };
        root.append(svg("text", label, new Date(h.hour).toISOString().slice(11, 16)));
      }
    });
    return root;
  }

  // ------------------------------------------------------------------------------------------------------------
  // Wiring
  // ------------------------------------------------------------------------------------------------------------

  /** Runs `action` with the form's submit button disabled, so a double click does not issue two keys. */
  function once(form, action) {
    return async (event) => {
      event.preventDefault();
      const button = form.querySelector("button[type=submit]");
      if (button.disabled) return;
      button.disabled = true;
      try {
        await action(event);
      } finally {
        button.disabled = false;
      }
    };
  }

  function start() {
    $("sign-in-form").addEventListener("submit", once($("sign-in-form"), signIn));
    $("sign-out").addEventListener("click", () => signOut());
    $("issue-form").addEventListener("submit", once($("issue-form"), issue));
    $("filter-form").addEventListener("submit", (event) => {
      event.preventDefault();
      refresh();
    });
    $("sort").addEventListener("change", refresh);
    $("more").addEventListener("click", more);
    $("keys").addEventListener("click", onAction);
    $("secret-copy").addEventListener("click", copySecret);
    $("secret-close").addEventListener("click", () => $("secret-dialog").close());
    // However the box closes (the button, Escape), the key goes with it.
    $("secret-dialog").addEventListener("close", forgetSecret);
    $("rotate-form").addEventListener("submit", once($("rotate-form"), rotate));
    $("revoke-form").addEventListener("submit", once($("revoke-form"), revoke));
    $("edit-form").addEventListener("submit", once($("edit-form"), saveEdit));
    for (const cancel of document.querySelectorAll("dialog .cancel")) {
      cancel.addEventListener("click", () => cancel.closest("dialog").close());
    }
    $("admin-key").focus();
  }

  start();
})();
