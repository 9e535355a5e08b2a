/**
 * The forms before the chat, one per identity mode: open (pick a name),
 * accounts (log in or register) and jwt (paste a token).
 */
import { isValidName, PASSWORD_MAX, PASSWORD_MIN } from "../protocol/limits.js";
import type { AuthMode } from "../protocol.js";
import { login, readClaims, register, type ChatClientError } from "../sdk/index.js";
import { byId, h, replace } from "./dom.js";
import type { Session } from "./storage.js";

const NAME_RULE = "Use 1 to 64 letters, digits, _, - or .";

/** What the server's refusal means to the person at the form. */
function explain(err: unknown): string {
  const e = err as Partial<ChatClientError>;
  switch (e.code) {
    case "conflict":
      return "That username is taken: choose another.";
    case "unauthorized":
      return "Wrong username or password.";
    case "rate_limited":
      return `Too many attempts: try again in ${Math.ceil((e.retryAfterMs ?? 60_000) / 1000)} s.`;
    case "invalid_username":
      return NAME_RULE;
    case undefined:
      return "Cannot reach the server: check the connection and try again.";
    default:
      return e.message ?? String(err);
  }
}

/** Shows the form for `mode`; `done` gets the new session. `notice` explains why it is shown (an expired session). */
export function loginForm(root: HTMLElement, mode: AuthMode, done: (s: Session) => void, notice = ""): void {
  const fields =
    mode === "accounts"
      ? [
          h("label", { for: "username" }, "Username"),
          h("input", { id: "username", name: "username", autocomplete: "username", maxlength: "64", required: true, autofocus: true }),
          h("label", { for: "password" }, "Password"),
          h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", maxlength: String(PASSWORD_MAX), required: true }),
          h(
            "div",
            { class: "buttons" },
            h("button", { id: "login-button", type: "submit" }, "Log in"),
            h("button", { id: "register-button", type: "submit", class: "secondary" }, "Register"),
          ),
        ]
      : mode === "jwt"
        ? [
            h("label", { for: "token" }, "Paste your access token"),
            h("textarea", { id: "token", name: "token", rows: "4", required: true, autofocus: true, spellcheck: "false", autocomplete: "off" }),
            h("button", { type: "submit" }, "Connect"),
          ]
        : [
            h("label", { for: "username" }, "Choose a username"),
            h("input", { id: "username", name: "username", autocomplete: "username", maxlength: "64", required: true, autofocus: true }),
            h("button", { type: "submit" }, "Start chatting"),
          ];
  replace(
    root,
    h(
      "form",
      { id: "login", class: "login", "data-mode": mode },
      h("h1", {}, "wirechat"),
      ...fields,
      h("p", { id: "login-error", class: "notice", role: "alert" }, notice),
    ),
  );

  const form = byId<HTMLFormElement>("login");
  const say = (text: string) => (byId("login-error").textContent = text);
  const value = (id: string) => byId<HTMLInputElement>(id).value;
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (mode === "open") {
      const user = value("username").trim();
      return isValidName(user) ? done({ mode, user }) : say(NAME_RULE);
    }
    if (mode === "jwt") {
      const token = value("token").trim();
      const claims = readClaims(token);
      if (!claims || !isValidName(claims.sub)) return say("That is not a token this server can take: it needs a `sub` that is a username.");
      if (claims.exp === undefined) return say("That token has no expiry (`exp`): this server only takes tokens that expire.");
      if (claims.exp * 1000 <= Date.now()) return say("That token has expired: get a new one.");
      return done({ mode, user: claims.sub, token });
    }
    const user = value("username").trim();
    const password = value("password");
    const registering = (e as SubmitEvent).submitter?.id === "register-button";
    if (!isValidName(user)) return say(NAME_RULE);
    if (registering && password.length < PASSWORD_MIN) return say(`Use at least ${PASSWORD_MIN} characters for the password.`);
    const buttons = Array.from(form.querySelectorAll("button"));
    for (const b of buttons) b.disabled = true;
    say(registering ? "Creating your account…" : "Logging in…");
    (async () => {
      if (registering) await register(location.origin, user, password);
      const { token } = await login(location.origin, user, password);
      done({ mode, user, token });
    })().catch((err) => {
      for (const b of buttons) b.disabled = false;
      say(explain(err));
    });
  });
}
