/*
 * 手続き案内チャット: the citizens' chat page (served at / by bot/routers/web.py).
 *
 * Talks to POST /api/chat {"sender_id", "text"} -> {"messages": [{"text", "buttons"?, "custom"?}]}
 * and renders each message as a bubble, its buttons as choices, and its "custom" card:
 *   {"type": "procedure", "procedure": {...}}   procedures/answer.py to_card
 *   {"type": "life_event", "life_event": {...}} procedures/answer.py compose_life_event
 *   {"type": "procedure_list", ...}             procedures/answer.py compose_channel_list
 * Sending a button's payload as the next text selects it; the citizen's bubble shows its title.
 *
 * Safety (issue 4, item 4): every text is put into the DOM with textContent / createTextNode;
 * no API that parses HTML is used (checked by tests/test_web.py). Links only from http(s) URLs.
 * Persistence: sender id and the displayed history in sessionStorage (the conversation survives a
 * reload of the tab); text size and the furigana toggle in localStorage.
 * Accessibility (WCAG 2.1 AA): new bot messages are read out through a polite live region;
 * every control is a native button / input with a label; ruby readings are hidden from
 * screen readers (they read the kanji themselves).
 * Furigana: POST /api/furigana {"text"} -> {"segments": [{"text", "reading"?}]} (SudachiPy).
 */
(function () {
  "use strict";

  var KEY_SENDER = "chat.sender_id";
  var KEY_HISTORY = "chat.history";
  var KEY_SIZE = "chat.text_size";
  var KEY_FURIGANA = "chat.furigana";
  var MAX_HISTORY = 200;
  var SIZES = ["normal", "large", "xlarge"];
  var LIST_PREVIEW = 10;

  var config = readJson("chat-config");
  var ui = readJson("ui-text");
  var labels = config.channel_labels || {};
  var els = {};
  var history = [];
  var senderId = null;
  var busy = false;
  var furiganaOn = false;
  var furiganaCache = new Map();

  function readJson(id) {
    var node = document.getElementById(id);
    try {
      return JSON.parse(node ? node.textContent : "{}");
    } catch (e) {
      return {};
    }
  }

  /* ---- storage (sessionStorage / localStorage may be unavailable: fall back to memory) ---- */
  var memory = {};
  function store(kind) {
    try {
      var s = window[kind];
      var probe = "__probe__";
      s.setItem(probe, probe);
      s.removeItem(probe);
      return s;
    } catch (e) {
      return {
        getItem: function (k) { return Object.prototype.hasOwnProperty.call(memory, k) ? memory[k] : null; },
        setItem: function (k, v) { memory[k] = String(v); },
        removeItem: function (k) { delete memory[k]; }
      };
    }
  }
  var session = store("sessionStorage");
  var local = store("localStorage");

  function newSenderId() {
    var bytes = new Uint8Array(12);
    window.crypto.getRandomValues(bytes);
    return "web-" + Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function loadSession() {
    senderId = session.getItem(KEY_SENDER);
    if (!senderId || !/^[A-Za-z0-9_.:-]{1,128}$/.test(senderId)) {
      senderId = newSenderId();
      session.setItem(KEY_SENDER, senderId);
    }
    try {
      var saved = JSON.parse(session.getItem(KEY_HISTORY) || "[]");
      history = Array.isArray(saved) ? saved : [];
    } catch (e) {
      history = [];
    }
  }

  function saveHistory() {
    if (history.length > MAX_HISTORY) history = history.slice(history.length - MAX_HISTORY);
    try {
      session.setItem(KEY_HISTORY, JSON.stringify(history));
    } catch (e) { /* quota: keep going without persistence */ }
  }

  /* ---- small DOM helpers (text only) ---- */
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null && text !== "") node.appendChild(fg(text));
    return node;
  }

  /* A span holding text that gets ruby when furigana is on. */
  function fg(text) {
    var span = document.createElement("span");
    span.className = "fg";
    span.textContent = String(text);
    span._fgText = String(text);
    if (furiganaOn) applyFurigana(span);
    return span;
  }

  function fill(template, values) {
    return String(template || "").replace(/\{(\w+)\}/g, function (m, k) {
      return Object.prototype.hasOwnProperty.call(values, k) ? String(values[k]) : m;
    });
  }

  function safeUrl(url) {
    try {
      var parsed = new URL(String(url), window.location.href);
      return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
    } catch (e) {
      return null;
    }
  }

  function link(url, text, cls) {
    var href = safeUrl(url);
    if (!href) return el("span", cls, text);
    var a = el("a", cls, text);
    a.href = href;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    var hint = document.createElement("span");
    hint.className = "sr-only";
    hint.textContent = ui.new_window || "";
    a.appendChild(hint);
    return a;
  }

  function telLink(phone) {
    var digits = String(phone || "").replace(/[^0-9+]/g, "");
    if (!digits) return el("span", null, phone);
    var a = document.createElement("a");
    a.href = "tel:" + digits;
    a.textContent = String(phone);
    return a;
  }

  /* Bot text: line breaks kept (CSS pre-wrap); http(s) URLs become links. */
  var URL_RE = /(https?:\/\/[^\s<>"'「」（）()、。]+)/g;
  function richText(text) {
    var box = document.createElement("div");
    box.className = "text";
    var parts = String(text || "").split(URL_RE);
    for (var i = 0; i < parts.length; i++) {
      if (!parts[i]) continue;
      if (i % 2 === 1) {
        var a = link(parts[i], parts[i], "url");
        box.appendChild(a);
      } else {
        box.appendChild(fg(parts[i]));
      }
    }
    return box;
  }

  function formatTime(iso, withDate) {
    var d = new Date(iso);
    if (isNaN(d.getTime())) return "";
    var parts = {};
    new Intl.DateTimeFormat("ja-JP", {
      timeZone: "Asia/Tokyo", month: "numeric", day: "numeric", weekday: "short",
      hour: "numeric", minute: "2-digit", hourCycle: "h23"
    }).formatToParts(d).forEach(function (p) { parts[p.type] = p.value; });
    var time = parts.hour + ":" + parts.minute;
    return withDate ? parts.month + "月" + parts.day + "日(" + parts.weekday + ") " + time : time;
  }

  function sameDayJst(iso) {
    var fmt = new Intl.DateTimeFormat("ja-JP", { timeZone: "Asia/Tokyo", year: "numeric", month: "numeric", day: "numeric" });
    return fmt.format(new Date(iso)) === fmt.format(new Date());
  }

  function label(channelId) {
    return labels[channelId] || channelId;
  }

  function payloadFor(procedureId) {
    return "/ask_procedure" + JSON.stringify({ procedure: procedureId });
  }

  /* ---- cards ---- */
  function statusBadge(ch) {
    var badge = document.createElement("span");
    var text;
    if (ch.open_now === true) {
      badge.className = "status open";
      if (ch.closes_at) {
        text = fill(ui.open_until, { time: formatTime(ch.closes_at, !sameDayJst(ch.closes_at)) });
      } else {
        text = ui.open_now; // always open, or open beyond the next 14 days
      }
    } else if (ch.open_now === false) {
      badge.className = "status closed";
      text = ch.next_open ? fill(ui.closed_next, { time: formatTime(ch.next_open, true) }) : ui.closed;
    } else {
      return null;
    }
    var icon = document.createElement("span");
    icon.className = "status-icon";
    icon.setAttribute("aria-hidden", "true");
    icon.textContent = ch.open_now ? "●" : "○";
    badge.appendChild(icon);
    badge.appendChild(fg(text));
    return badge;
  }

  function feeText(ch) {
    if (ch.fee_yen === null || ch.fee_yen === undefined) return ui.fee_unknown;
    var text = ch.fee_yen === 0 ? ui.fee_free : fill(ui.fee_yen, { fee: Number(ch.fee_yen).toLocaleString("ja-JP") });
    return ch.fee_note ? text + "（" + ch.fee_note + "）" : text;
  }

  function addFact(dl, term, value) {
    if (value === null || value === undefined || value === "") return;
    var row = el("div", "fact");
    row.appendChild(el("dt", null, term));
    var dd = document.createElement("dd");
    if (Array.isArray(value)) {
      var ul = document.createElement("ul");
      value.forEach(function (item) { ul.appendChild(el("li", null, item)); });
      dd.appendChild(ul);
    } else {
      dd.appendChild(fg(value));
    }
    row.appendChild(dd);
    dl.appendChild(row);
  }

  // An <article> card named for screen readers, with its title as the first heading.
  function cardShell(kind, title) {
    var card = document.createElement("article");
    card.className = "card " + kind;
    card.setAttribute("aria-label", fill(ui.card_label, { name: title || "" }));
    card.appendChild(el("h3", "card-title", title));
    return card;
  }

  function procedureCard(p) {
    var card = cardShell("procedure-card", p.name);
    if (p.summary) card.appendChild(el("p", "summary", p.summary));
    if (p.verified === false) card.appendChild(el("p", "unverified", ui.unverified));

    var channels = p.channels || {};
    var order = Array.isArray(p.channel_order) ? p.channel_order : Object.keys(channels);
    var list = document.createElement("ul");
    list.className = "channels";
    order.forEach(function (id) {
      var ch = channels[id];
      if (!ch || ch.available === false) return;
      var li = document.createElement("li");
      li.className = "channel channel-" + id.replace(/[^a-z_]/g, "");
      var head = document.createElement("div");
      head.className = "channel-head";
      head.appendChild(el("h4", "channel-label", label(id)));
      var badge = statusBadge(ch);
      if (badge) head.appendChild(badge);
      li.appendChild(head);
      if (ch.how) li.appendChild(el("p", "how", ch.how));
      var dl = document.createElement("dl");
      dl.className = "facts";
      addFact(dl, ui.hours, ch.hours);
      addFact(dl, ui.fee, feeText(ch));
      if (ch.requirements && ch.requirements.length) addFact(dl, ui.requirements, ch.requirements);
      li.appendChild(dl);
      if (ch.note) li.appendChild(el("p", "note", ch.note));
      if (ch.url) li.appendChild(link(ch.url, fill(ui.channel_link, { label: label(id) }), "channel-link"));
      list.appendChild(li);
    });
    card.appendChild(list);

    var missing = Object.keys(channels).filter(function (id) { return channels[id] && channels[id].available === false; });
    if (missing.length) {
      card.appendChild(el("p", "unavailable", fill(ui.unavailable, { labels: missing.map(label).join("・") })));
    }
    var more = document.createElement("dl");
    more.className = "facts";
    if (p.documents && p.documents.length) addFact(more, ui.documents, p.documents);
    addFact(more, ui.deadline, p.deadline);
    addFact(more, ui.proxy, p.proxy);
    if (more.childNodes.length) card.appendChild(more);

    var footer = document.createElement("footer");
    footer.className = "card-footer";
    if (p.department) footer.appendChild(el("span", "department", ui.department + "：" + p.department));
    if (p.phone) {
      var phone = el("span", "phone", ui.phone + "：");
      phone.appendChild(telLink(p.phone));
      footer.appendChild(phone);
    }
    if (p.source_url) footer.appendChild(link(p.source_url, ui.official_page, "source"));
    if (p.checked && p.checked !== "unverified") footer.appendChild(el("span", "checked", fill(ui.checked, { date: p.checked })));
    card.appendChild(footer);
    return card;
  }

  function procedureButtons(items, cls) {
    var ul = document.createElement("ul");
    ul.className = cls;
    items.forEach(function (item) {
      var li = document.createElement("li");
      var button = el("button", "choice item-choice", item.name);
      button.type = "button";
      button.addEventListener("click", function () { send(payloadFor(item.id), item.name); });
      li.appendChild(button);
      if (item.deadline) li.appendChild(el("span", "deadline", item.deadline));
      if (Array.isArray(item.channels) && item.channels.length) {
        li.appendChild(el("span", "channel-tags", item.channels.map(label).join("・")));
      }
      if (item.no_visit === true) li.appendChild(el("span", "tag no-visit", ui.no_visit));
      ul.appendChild(li);
    });
    return ul;
  }

  /* A list of procedure buttons: the first LIST_PREVIEW, and a button that shows them all. */
  function previewList(card, items) {
    var list = procedureButtons(items.slice(0, LIST_PREVIEW), "item-list");
    card.appendChild(list);
    if (items.length <= LIST_PREVIEW) return;
    var more = el("button", "tool show-all", fill(ui.show_all, { total: items.length }));
    more.type = "button";
    more.addEventListener("click", function () {
      var full = procedureButtons(items, "item-list");
      card.replaceChild(full, list);
      more.remove();
      var first = full.querySelectorAll("button")[LIST_PREVIEW];
      if (first) first.focus();
    });
    card.appendChild(more);
  }

  function lifeEventCard(ev) {
    var card = cardShell("life-event-card", ev.label);
    previewList(card, ev.procedures || []);
    return card;
  }

  function listCard(c) {
    var card = document.createElement("article");
    card.className = "card list-card";
    var title = fill(ui.list_label, { label: label(c.channel), total: c.total });
    card.setAttribute("aria-label", title);
    card.appendChild(el("h3", "card-title", title));
    previewList(card, c.procedures || []);
    return card;
  }

  function renderCard(custom) {
    if (!custom || typeof custom !== "object") return null;
    if (custom.type === "procedure" && custom.procedure) return procedureCard(custom.procedure);
    if (custom.type === "life_event" && custom.life_event) return lifeEventCard(custom.life_event);
    if (custom.type === "procedure_list") return listCard(custom);
    return null;
  }

  function cardItemNames(custom) {
    var items = [];
    if (custom && custom.type === "life_event" && custom.life_event) items = custom.life_event.procedures || [];
    if (custom && custom.type === "procedure_list") items = custom.procedures || [];
    return items.map(function (i) { return i.name; });
  }

  /* ---- messages ---- */
  function speaker(name) {
    var s = document.createElement("span");
    s.className = "sr-only";
    s.textContent = name + "：";
    return s;
  }

  function renderUser(text) {
    var li = document.createElement("li");
    li.className = "msg user";
    li.appendChild(speaker(ui.you));
    var bubble = document.createElement("div");
    bubble.className = "bubble";
    bubble.textContent = String(text); // citizen text: always plain text, never HTML
    li.appendChild(bubble);
    els.log.appendChild(li);
    return li;
  }

  function renderBot(message) {
    var li = document.createElement("li");
    li.className = "msg bot";
    li.appendChild(speaker(ui.bot));
    if (message.text) {
      var bubble = document.createElement("div");
      bubble.className = "bubble";
      bubble.appendChild(richText(message.text));
      li.appendChild(bubble);
    }
    var card = renderCard(message.custom);
    if (card) li.appendChild(card);
    var shown = cardItemNames(message.custom);
    var buttons = (message.buttons || []).filter(function (b) {
      return b && b.title && b.payload && shown.indexOf(b.title) < 0;
    });
    if (buttons.length) {
      var group = document.createElement("div");
      group.className = "choices";
      group.setAttribute("role", "group");
      group.setAttribute("aria-label", ui.choices);
      buttons.forEach(function (b) {
        var button = el("button", "choice", b.title);
        button.type = "button";
        button.addEventListener("click", function () { send(String(b.payload), String(b.title)); });
        group.appendChild(button);
      });
      li.appendChild(group);
    }
    els.log.appendChild(li);
    return li;
  }

  function spokenText(message) {
    var parts = [];
    if (message.text) parts.push(message.text);
    var c = message.custom;
    if (c && c.type === "procedure" && c.procedure) parts.push(fill(ui.card_label, { name: c.procedure.name }));
    if (message.buttons && message.buttons.length) {
      parts.push(ui.choices + "：" + message.buttons.map(function (b) { return b.title; }).join("、"));
    }
    return parts.join("\n");
  }

  function renderEntry(entry) {
    if (entry.role === "user") return renderUser(entry.text);
    return renderBot(entry.message || {});
  }

  function scrollToEnd(node) {
    if (node && node.scrollIntoView) node.scrollIntoView({ block: "start", behavior: "auto" });
  }

  function setBusy(on) {
    busy = on;
    els.typing.hidden = !on;
    els.send.disabled = on;
    els.log.setAttribute("aria-busy", on ? "true" : "false");
    if (on) scrollToEnd(els.typing);
  }

  function showError(text) {
    els.formError.textContent = text || "";
    els.formError.hidden = !text;
  }

  function apiErrorText(body) {
    var detail = body && body.detail;
    var msg = Array.isArray(detail) && detail[0] ? detail[0].msg : (typeof detail === "string" ? detail : "");
    return String(msg || "").split(" / ")[0];
  }

  function send(text, shown) {
    text = String(text || "").trim();
    if (busy) return;
    if (!text) { showError(ui.empty); return; }
    if (config.max_chars && text.length > config.max_chars) {
      showError(fill(ui.too_long, { max: config.max_chars }));
      return;
    }
    showError("");
    var display = shown || text;
    history.push({ role: "user", text: display });
    saveHistory();
    var first = renderUser(display);
    els.announcer.textContent = "";
    setBusy(true);
    fetch("/api/chat", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ sender_id: senderId, text: text })
    }).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (body) {
        if (resp.ok && body && Array.isArray(body.messages)) return body.messages;
        if (resp.status === 422 || resp.status === 400 || resp.status === 429) {
          var err = apiErrorText(body);
          if (err) return [{ text: err }];
        }
        throw new Error("HTTP " + resp.status);
      });
    }).catch(function () {
      return [{ text: fill(ui.network_error, { contact: (config.city && config.city.contact) || "" }), local: true }];
    }).then(function (messages) {
      setBusy(false);
      var spoken = [];
      messages.forEach(function (m) {
        var message = { text: m.text || "", buttons: m.buttons || undefined, custom: m.custom || undefined };
        history.push({ role: "bot", message: message });
        renderBot(message);
        spoken.push(spokenText(message));
      });
      saveHistory();
      els.announcer.textContent = ui.bot + "：" + spoken.join("\n");
      scrollToEnd(first);
      els.input.focus();
    });
  }

  /* ---- furigana ---- */
  function fetchSegments(text) {
    if (!furiganaCache.has(text)) {
      var p = fetch("/api/furigana", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ text: text })
      }).then(function (resp) {
        if (!resp.ok) throw new Error("HTTP " + resp.status);
        return resp.json();
      }).then(function (body) {
        return Array.isArray(body.segments) ? body.segments : [{ text: text }];
      }).catch(function () {
        furiganaCache.delete(text);
        return [{ text: text }];
      });
      furiganaCache.set(text, p);
    }
    return furiganaCache.get(text);
  }

  function applyFurigana(span) {
    var text = span._fgText;
    if (!text || !/[\u3400-\u9fff\uf900-\ufaff\u3005]/.test(text)) return;
    fetchSegments(text).then(function (segments) {
      if (!furiganaOn || span._fgText !== text) return;
      var frag = document.createDocumentFragment();
      segments.forEach(function (seg) {
        if (seg.reading) {
          var ruby = document.createElement("ruby");
          ruby.appendChild(document.createTextNode(String(seg.text)));
          var rt = document.createElement("rt");
          rt.setAttribute("aria-hidden", "true");
          rt.textContent = String(seg.reading);
          ruby.appendChild(rt);
          frag.appendChild(ruby);
        } else {
          frag.appendChild(document.createTextNode(String(seg.text)));
        }
      });
      span.textContent = "";
      span.appendChild(frag);
      span.classList.add("has-ruby");
    });
  }

  function setFurigana(on) {
    furiganaOn = !!on;
    els.furigana.setAttribute("aria-pressed", furiganaOn ? "true" : "false");
    document.documentElement.classList.toggle("furigana", furiganaOn);
    local.setItem(KEY_FURIGANA, furiganaOn ? "on" : "off");
    Array.prototype.forEach.call(document.querySelectorAll(".fg"), function (span) {
      if (furiganaOn) {
        applyFurigana(span);
      } else if (span.classList.contains("has-ruby")) {
        span.textContent = span._fgText;
        span.classList.remove("has-ruby");
      }
    });
  }

  /* ---- text size ---- */
  function setSize(size) {
    if (SIZES.indexOf(size) < 0) size = "normal";
    document.documentElement.setAttribute("data-size", size);
    local.setItem(KEY_SIZE, size);
    if (els.form) fitScrollPadding();
    Array.prototype.forEach.call(document.querySelectorAll("button.size"), function (b) {
      b.setAttribute("aria-pressed", b.getAttribute("data-size") === size ? "true" : "false");
    });
  }

  function restart() {
    history = [];
    session.removeItem(KEY_HISTORY);
    senderId = newSenderId();
    session.setItem(KEY_SENDER, senderId);
    els.log.textContent = "";
    els.announcer.textContent = "";
    showError("");
    els.input.value = "";
    els.input.focus();
  }

  /* Spans of the static page (intro, examples) also get furigana. */
  function markStatic() {
    Array.prototype.forEach.call(document.querySelectorAll(".intro p, .intro h2, .example"), function (node) {
      var text = node.textContent;
      if (node.classList.contains("example")) node.setAttribute("data-text", text);
      node.textContent = "";
      node.appendChild(fg(text));
    });
  }

  /* Keep scrolled-to and focused elements clear of the sticky header and input bar. */
  function fitScrollPadding() {
    var header = document.querySelector(".bar");
    var root = document.documentElement.style;
    root.setProperty("scroll-padding-top", (header ? header.offsetHeight + 8 : 0) + "px");
    root.setProperty("scroll-padding-bottom", (els.form ? els.form.offsetHeight + 8 : 0) + "px");
  }

  function init() {
    els.log = document.getElementById("log");
    els.form = document.getElementById("chat-form");
    els.input = document.getElementById("chat-input");
    els.send = document.getElementById("send");
    els.typing = document.getElementById("typing");
    els.announcer = document.getElementById("announcer");
    els.formError = document.getElementById("form-error");
    els.furigana = document.getElementById("furigana-toggle");
    if (config.max_chars) els.input.maxLength = config.max_chars;
    if (window.self !== window.top) document.documentElement.classList.add("embedded");

    setSize(local.getItem(KEY_SIZE) || "normal");
    fitScrollPadding();
    window.addEventListener("resize", fitScrollPadding);
    markStatic();
    loadSession();
    history.forEach(renderEntry);
    setFurigana(local.getItem(KEY_FURIGANA) === "on");
    if (history.length) scrollToEnd(els.log.lastElementChild);

    els.form.addEventListener("submit", function (event) {
      event.preventDefault();
      var text = els.input.value;
      if (busy) return;
      if (text.trim()) els.input.value = "";
      send(text);
    });
    Array.prototype.forEach.call(document.querySelectorAll("button.size"), function (b) {
      b.addEventListener("click", function () { setSize(b.getAttribute("data-size")); });
    });
    els.furigana.addEventListener("click", function () { setFurigana(!furiganaOn); });
    document.getElementById("restart").addEventListener("click", restart);
    Array.prototype.forEach.call(document.querySelectorAll(".example"), function (b) {
      b.addEventListener("click", function () { send(b.getAttribute("data-text") || b.textContent); });
    });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && window.parent !== window) {
        window.parent.postMessage({ type: "chat-widget-close" }, "*");
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
