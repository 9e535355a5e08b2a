/** Preloaded by `bun test` (bunfig.toml): removes the run's temporary folders once every test is done. */
import { afterAll } from "bun:test";
import { removeTempDirs } from "./tmp";

afterAll(removeTempDirs);
