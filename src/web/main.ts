/**
 * The web chat page's script, bundled by `Bun.build` (see page.ts): asks the
 * server which identity mode it runs in, then shows that mode's login form,
 * or the chat of the session this tab already has.
 */
import { authMode, readClaims, type AuthMode } from "../sdk/index.js";
import { chat } from "./chat.js";
import { byId, h, replace } from "./dom.js";
import { loginForm } from "./login.js";
import { clearSession, loadSession, saveSession, type Session } from "./storage.js";

const root = byId("app");

/** A pasted token that has expired cannot connect; say so instead of reconnecting forever. */
const expired = (s: Session) => {
  const exp = s.token === undefined ? undefined : readClaims(s.token)?.exp;
  return exp !== undefined && exp * 1000 <= Date.now();
};

function showLogin(mode: AuthMode, notice?: string): void {
  loginForm(
    root,
    mode,
    (s) => {
      saveSession(s);
      showChat(mode, s, true);
    },
    notice,
  );
}

function showChat(mode: AuthMode, s: Session, justLoggedIn: boolean): void {
  chat(root, s, justLoggedIn, (notice) => {
    clearSession();
    showLogin(mode, notice);
  });
}

async function start(): Promise<void> {
  let mode: AuthMode;
  try {
    mode = await authMode(location.origin);
  } catch {
    replace(
      root,
      h(
        "div",
        { class: "login" },
        h("h1", {}, "wirechat"),
        h("p", { class: "notice", role: "alert" }, "Cannot reach the server."),
        h("button", { id: "retry", type: "button" }, "Try again"),
      ),
    );
    byId("retry").addEventListener("click", () => void start());
    return;
  }
  const saved = loadSession(mode);
  if (!saved) return showLogin(mode);
  if (mode === "jwt" && expired(saved)) {
    clearSession();
    return showLogin(mode, "Your token has expired: paste a new one.");
  }
  showChat(mode, saved, false);
}

void start();
