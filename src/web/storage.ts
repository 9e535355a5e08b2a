/**
 * What the page keeps in the browser. Per tab (sessionStorage), so two tabs
 * can be two users: who is logged in, with which token, in which rooms, and
 * in open mode the recent direct messages. Per user and across tabs
 * (localStorage): the names of the direct conversations, which no server
 * route lists, and how far each partner has received and read.
 */
import { isValidName } from "../protocol/limits.js";
import type { AuthMode } from "../protocol.js";
import type { ChatMessage } from "../sdk/index.js";
import type { Ticks } from "./state.js";

/** Who this tab is logged in as. */
export interface Session {
  mode: AuthMode;
  user: string;
  /** jwt and accounts modes: the bearer token. */
  token?: string;
}

const PREFIX = "wirechat.";
const SESSION_KEY = `${PREFIX}session`;
const ROOMS_KEY = `${PREFIX}rooms`;
const partnersKey = (user: string) => `${PREFIX}dms.${user}`;
const recentKey = (user: string) => `${PREFIX}recent-dms.${user}`;
const ticksKey = (user: string) => `${PREFIX}ticks.${user}`;
/** Direct messages kept per conversation in open mode, where the server does not serve them. */
export const RECENT_MAX = 50;

/** Storage can throw (quota, disabled): the page works on without it. */
function read<T>(store: Storage, key: string): T | undefined {
  try {
    const raw = store.getItem(key);
    return raw === null ? undefined : (JSON.parse(raw) as T);
  } catch {
    return undefined;
  }
}
function write(store: Storage, key: string, value: unknown): void {
  try {
    store.setItem(key, JSON.stringify(value));
  } catch {}
}

const names = (v: unknown): string[] => (Array.isArray(v) ? v.filter(isValidName) : []);

/** The tab's session for a server in `mode`; undefined when there is none, or it was made for another mode. */
export function loadSession(mode: AuthMode): Session | undefined {
  const s = read<Partial<Session>>(sessionStorage, SESSION_KEY);
  if (!s || s.mode !== mode || !isValidName(s.user)) return undefined;
  if (mode !== "open" && typeof s.token !== "string") return undefined;
  return { mode, user: s.user, token: s.token };
}

export function saveSession(s: Session): void {
  write(sessionStorage, SESSION_KEY, s);
}

/** Forgets everything this tab kept (token, rooms, recent messages); the conversation names stay with their user. */
export function clearSession(): void {
  for (const key of Object.keys(sessionStorage)) if (key.startsWith(PREFIX)) sessionStorage.removeItem(key);
}

export const loadRooms = (): string[] => names(read(sessionStorage, ROOMS_KEY));
export const saveRooms = (rooms: readonly string[]): void => write(sessionStorage, ROOMS_KEY, rooms);

/** The users `user` has direct conversations with, as far as this browser knows. */
export const loadPartners = (user: string): string[] => names(read(localStorage, partnersKey(user)));

/** Remembers a direct conversation partner of `user`. */
export function addPartner(user: string, partner: string): void {
  const list = loadPartners(user);
  if (list.includes(partner)) return;
  write(localStorage, partnersKey(user), [...list, partner]);
}

const isMessage = (m: unknown): m is ChatMessage => {
  const x = m as Partial<ChatMessage> | null;
  return (
    typeof x === "object" &&
    x !== null &&
    typeof x.id === "number" &&
    typeof x.text === "string" &&
    typeof x.from === "string" &&
    typeof x.at === "number" &&
    x.kind === "direct" &&
    typeof x.to === "string"
  );
};

/** Open mode: the last direct messages of each conversation of `user`, by partner. */
export function loadRecent(user: string): Map<string, ChatMessage[]> {
  const raw = read<Record<string, unknown>>(sessionStorage, recentKey(user)) ?? {};
  const out = new Map<string, ChatMessage[]>();
  for (const [partner, list] of Object.entries(raw)) {
    if (isValidName(partner) && Array.isArray(list)) out.set(partner, list.filter(isMessage));
  }
  return out;
}

/** Open mode: keeps the last `RECENT_MAX` messages of each conversation (given in id order). */
export function saveRecent(user: string, byPartner: ReadonlyMap<string, readonly ChatMessage[]>): void {
  const out: Record<string, ChatMessage[]> = {};
  for (const [partner, list] of byPartner) out[partner] = list.slice(-RECENT_MAX);
  write(sessionStorage, recentKey(user), out);
}

const isId = (n: unknown): n is number => typeof n === "number" && Number.isSafeInteger(n) && n >= 0;

/** How far each partner of `user` has received and read `user`'s direct messages, as receipts said. */
export function loadTicks(user: string): Map<string, Ticks> {
  const raw = read<Record<string, unknown>>(localStorage, ticksKey(user)) ?? {};
  const out = new Map<string, Ticks>();
  for (const [partner, t] of Object.entries(raw)) {
    if (isValidName(partner) && Array.isArray(t) && isId(t[0]) && isId(t[1])) out.set(partner, [t[0], t[1]]);
  }
  return out;
}

/** Remembers a partner's receipts. */
export function saveTicks(user: string, partner: string, ticks: Ticks): void {
  const all = Object.fromEntries(loadTicks(user));
  all[partner] = ticks;
  write(localStorage, ticksKey(user), all);
}
