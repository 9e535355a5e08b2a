/**
 * Lists a hot path keeps between calls instead of making new ones per call
 * (the commit path's working lists: each one made per commit was garbage a
 * young collection had to follow).
 */

/** Entries past which a kept list is dropped rather than emptied: an emptied JavaScriptCore array keeps its storage. */
export const SCRATCH_KEEP = 1_024;

/**
 * `list`, emptied for the next call; or a new empty list when `list` grew
 * past SCRATCH_KEEP, so one huge batch does not hold its memory for good.
 */
export function emptied<T>(list: T[]): T[] {
  if (list.length > SCRATCH_KEEP) return [];
  list.length = 0;
  return list;
}
