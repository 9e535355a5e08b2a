/**
 * The admin API, only when `ADMIN_TOKEN` is set (otherwise 404):
 * disconnect a user's sockets, or revoke every token issued to them so far.
 */
import { Elysia } from "elysia";
import { timingSafeEqual } from "node:crypto";
import type { Revocations } from "../auth/store";
import type { Hub } from "../hub/hub";
import { ChatError } from "../errors";
import type { Logger } from "../log";
import { AdminBody, CLOSE, HttpError, isValidName } from "../protocol";

export interface AdminOptions {
  token?: string;
  hub: Hub;
  revocations?: Revocations;
  log: Logger;
}

const digest = (s: string) => new Bun.CryptoHasher("sha256").update(s).digest();

/** Compares in constant time: the token's length and content do not leak through timing. */
function tokenMatches(header: string | null, token: string): boolean {
  const m = header === null ? null : /^Bearer[ ]+(\S+)$/i.exec(header);
  return m !== null && timingSafeEqual(digest(m[1]!), digest(token));
}

/** `/admin/users/:name/disconnect` and `/admin/users/:name/revoke`. */
export const adminRoutes = (o: AdminOptions) => {
  const check = (request: Request, name: string) => {
    if (o.token === undefined) throw new ChatError("not_found", "No such route");
    if (!tokenMatches(request.headers.get("authorization"), o.token)) {
      throw new ChatError("unauthorized", "The admin API needs Authorization: Bearer <ADMIN_TOKEN>");
    }
    if (!isValidName(name)) throw new ChatError("invalid_username", "Invalid username: use 1 to 64 letters, digits, _, - or .");
  };
  return new Elysia({ name: "admin" })
    .post("/admin/users/:name/disconnect", ({ request, params }) => {
      check(request, params.name);
      const closed = o.hub.disconnect(params.name, CLOSE.forbidden, "Disconnected by an administrator");
      o.log.info("admin: disconnected a user", { user: params.name, closed });
      return { user: params.name, closed };
    }, { response: { 200: AdminBody, 401: HttpError, 404: HttpError } })
    .post("/admin/users/:name/revoke", async ({ request, params }) => {
      check(request, params.name);
      if (!o.revocations) throw new ChatError("not_found", "Revocation needs a token mode: this server runs with AUTH=open");
      await o.revocations.revoke(params.name, Date.now());
      const closed = o.hub.disconnect(params.name, CLOSE.unauthorized, "Tokens revoked: log in again");
      o.log.info("admin: revoked a user's tokens", { user: params.name, closed });
      return { user: params.name, closed };
    }, { response: { 200: AdminBody, 401: HttpError, 404: HttpError } });
};
