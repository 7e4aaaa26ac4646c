/*
 * 手続き案内チャット — embeddable widget for the city's website.
 *
 *   <script src="https://<gateway>/widget.js" async></script>
 *
 * Optional attributes on that script tag:
 *   data-label="チャットで質問"   text of the floating button
 *   data-title="手続き案内チャット" accessible name of the chat panel (and its iframe)
 *   data-position="left"          put the button bottom-left instead of bottom-right
 *
 * Adds a floating, keyboard-accessible button; it opens the chat page (served by the same
 * gateway at /) in an iframe panel. Escape or the close button closes the panel and gives the
 * focus back to the button. The iframe is created on first open, so nothing is loaded before.
 * Styles are set through the CSSOM (element.style), which a strict CSP on the host page allows.
 * The gateway must allow the host site in WEB_FRAME_ANCESTORS (default: the city's website).
 */
(function () {
  "use strict";
  if (window.__chatWidgetLoaded) return;
  window.__chatWidgetLoaded = true;

  var script = document.currentScript || document.querySelector('script[src*="widget.js"]');
  if (!script) return;
  var base = new URL(script.src, window.location.href);
  var origin = base.origin;
  var chatUrl = origin + "/";
  var labelText = script.getAttribute("data-label") || "チャットで質問";
  var titleText = script.getAttribute("data-title") || "手続き案内チャット";
  var side = script.getAttribute("data-position") === "left" ? "left" : "right";
  var BRAND = "#0b4f8a";
  var FOCUS = "#c25100";

  function css(node, styles) {
    for (var k in styles) if (Object.prototype.hasOwnProperty.call(styles, k)) node.style[k] = styles[k];
    return node;
  }

  function focusRing(node) {
    node.addEventListener("focus", function () { node.style.outline = "3px solid " + FOCUS; node.style.outlineOffset = "2px"; });
    node.addEventListener("blur", function () { node.style.outline = "none"; });
  }

  var root = css(document.createElement("div"), { position: "fixed", zIndex: "2147483000", bottom: "0", fontSize: "16px" });
  root.style[side] = "0";
  root.setAttribute("data-chat-widget", "");

  var button = css(document.createElement("button"), {
    position: "fixed", bottom: "20px", display: "flex", alignItems: "center", gap: "8px",
    minHeight: "56px", padding: "0 20px", border: "2px solid #ffffff", borderRadius: "28px",
    background: BRAND, color: "#ffffff", font: "bold 16px/1.4 sans-serif", cursor: "pointer",
    boxShadow: "0 2px 8px rgba(0,0,0,0.35)"
  });
  button.style[side] = "20px";
  button.type = "button";
  button.id = "chat-widget-button";
  button.setAttribute("aria-expanded", "false");
  button.setAttribute("aria-controls", "chat-widget-panel");
  var SVG = "http://www.w3.org/2000/svg";
  var icon = document.createElementNS(SVG, "svg");  // a speech bubble (no emoji font needed)
  icon.setAttribute("viewBox", "0 0 24 24");
  icon.setAttribute("width", "24");
  icon.setAttribute("height", "24");
  icon.setAttribute("aria-hidden", "true");
  icon.setAttribute("focusable", "false");
  var path = document.createElementNS(SVG, "path");
  path.setAttribute("d", "M4 3h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z");
  path.setAttribute("fill", "#ffffff");
  icon.appendChild(path);
  var text = document.createElement("span");
  text.textContent = labelText;
  button.appendChild(icon);
  button.appendChild(text);
  focusRing(button);

  var panel = css(document.createElement("div"), {
    position: "fixed", display: "none", flexDirection: "column", background: "#ffffff",
    border: "1px solid #8a8f96", borderRadius: "12px", overflow: "hidden",
    boxShadow: "0 4px 24px rgba(0,0,0,0.35)"
  });
  panel.id = "chat-widget-panel";
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", titleText);

  var head = css(document.createElement("div"), {
    display: "flex", alignItems: "center", justifyContent: "space-between",
    background: BRAND, color: "#ffffff", padding: "4px 8px 4px 16px", font: "bold 16px/1.4 sans-serif"
  });
  var heading = document.createElement("span");
  heading.textContent = titleText;
  var close = css(document.createElement("button"), {
    minWidth: "44px", minHeight: "44px", border: "0", background: "transparent", color: "#ffffff",
    font: "bold 24px/1 sans-serif", cursor: "pointer"
  });
  close.type = "button";
  close.setAttribute("aria-label", "閉じる");
  close.textContent = "\u00D7";
  focusRing(close);
  head.appendChild(heading);
  head.appendChild(close);
  panel.appendChild(head);

  var frame = null;

  function layout() {
    var phone = window.innerWidth < 520;
    css(panel, phone
      ? { top: "0", bottom: "0", left: "0", right: "0", width: "100%", height: "100%", borderRadius: "0" }
      : { top: "auto", bottom: "88px", width: "400px", height: "min(640px, calc(100vh - 112px))", borderRadius: "12px" });
    if (!phone) {
      panel.style[side] = "20px";
      panel.style[side === "left" ? "right" : "left"] = "auto";
    }
  }

  function open() {
    if (!frame) {
      frame = css(document.createElement("iframe"), { flex: "1 1 auto", width: "100%", border: "0" });
      frame.title = titleText;
      frame.src = chatUrl;
      frame.setAttribute("allow", "clipboard-write");
      panel.appendChild(frame);
    }
    layout();
    panel.style.display = "flex";
    button.setAttribute("aria-expanded", "true");
    if (window.innerWidth < 520) button.style.display = "none";
    close.focus();
  }

  function hide() {
    panel.style.display = "none";
    button.style.display = "flex";
    button.setAttribute("aria-expanded", "false");
    button.focus();
  }

  button.addEventListener("click", function () {
    if (panel.style.display === "flex") hide(); else open();
  });
  close.addEventListener("click", hide);
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && panel.style.display === "flex") hide();
  });
  window.addEventListener("message", function (event) {
    if (event.origin !== origin || !frame || event.source !== frame.contentWindow) return;
    if (event.data && event.data.type === "chat-widget-close" && panel.style.display === "flex") hide();
  });
  window.addEventListener("resize", function () { if (panel.style.display === "flex") layout(); });

  root.appendChild(panel);
  root.appendChild(button);
  function mount() { document.body.appendChild(root); }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
