/** `POST /auth/register`, `/auth/login`, `/auth/refresh`: built-in accounts (`AUTH=accounts`). */
import { Elysia } from "elysia";
import type { Server } from "bun";
import type { Accounts } from "../auth/accounts";
import { ChatError } from "../errors";
import { Credentials, HttpError, RegisteredBody, TokenBody } from "../protocol";
import type { createGate } from "./gate";

type Gate = ReturnType<typeof createGate>;

const off = () => new ChatError("not_found", "Accounts are off: this server does not run with AUTH=accounts");

/** The accounts routes; without `accounts` (other modes) they answer 404. */
export const accountRoutes = (accounts: Accounts | undefined, gate: Gate) =>
  new Elysia()
    .post(
      "/auth/register",
      async ({ body, request, server, status }) => {
        if (!accounts) throw off();
        await accounts.register(body.username, body.password, gate.address(request, server as Server<unknown> | null));
        return status(201, { username: body.username });
      },
      {
        detail: { summary: "Creates an account (AUTH=accounts; 404 otherwise)" },
        body: Credentials,
        response: { 201: RegisteredBody, 400: HttpError, 404: HttpError, 409: HttpError, 429: HttpError },
      },
    )
    .post(
      "/auth/login",
      async ({ body, request, server }) => {
        if (!accounts) throw off();
        return accounts.login(body.username, body.password, gate.address(request, server as Server<unknown> | null));
      },
      {
        detail: { summary: "A token for a username and password (AUTH=accounts; 404 otherwise)" },
        body: Credentials,
        response: { 200: TokenBody, 400: HttpError, 401: HttpError, 404: HttpError, 429: HttpError },
      },
    )
    .post(
      "/auth/refresh",
      async ({ request }) => {
        if (!accounts) throw off();
        const caller = await gate.identify(request.headers);
        return accounts.issue(caller!.user);
      },
      {
        detail: { summary: "A fresh token for the caller's valid one (AUTH=accounts; 404 otherwise)", security: [{ bearer: [] }] },
        response: { 200: TokenBody, 401: HttpError, 404: HttpError },
      },
    );
