/**
 * A typed Eden Treaty client for the wirechat app. It imports `type App`
 * only, so no server code ends up in a client bundle.
 */
import { treaty } from "@elysiajs/eden";
import type { App } from "./app";

/** Creates a typed HTTP and WebSocket client for a wirechat server at `baseUrl`. */
export const createClient = (baseUrl: string) => treaty<App>(baseUrl);

export type Client = ReturnType<typeof createClient>;
export type { App };
