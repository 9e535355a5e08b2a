/**
 * The benchmark's arithmetic: the README's ratios and the targets' verdicts
 * come from these functions, so a slip here would print a target as met that
 * was not. Pure functions on hand-made run results; no server runs.
 */
import { describe, expect, test } from "bun:test";
import { INTERLEAVED_BASELINE, interleavedSummary, interleavedTargets } from "../bench/lib/interleaved";
import { checkTargets, ratios, summarize, TARGETS, verdict } from "../bench/lib/report";
import { type RunResult, scenarios } from "../bench/lib/scenarios";

const run = (scenario: string, server: string, rep: number, value: number, extra: Partial<RunResult> = {}): RunResult => ({
  scenario,
  server,
  rep,
  ok: true,
  error: null,
  lost: 0,
  value,
  metrics: {},
  ...extra,
});

describe("summarize", () => {
  test("summarize_oddCount_takesTheMiddle", () => {
    expect(summarize([5, 1, 3])).toEqual({ median: 3, min: 1, max: 5, n: 3 });
  });

  test("summarize_evenCount_averagesTheTwoMiddles", () => {
    expect(summarize([4, 1, 10, 2])).toEqual({ median: 3, min: 1, max: 10, n: 4 });
  });

  test("summarize_nonFinite_areLeftOut", () => {
    expect(summarize([Number.NaN, 2, Number.POSITIVE_INFINITY, 4])).toEqual({ median: 3, min: 2, max: 4, n: 2 });
  });

  test("summarize_empty_hasNoMedian", () => {
    const s = summarize([]);
    expect(s.n).toBe(0);
    expect(Number.isNaN(s.median)).toBe(true);
  });

  test("summarize_doesNotReorderItsInput", () => {
    const xs = [3, 1, 2];
    summarize(xs);
    expect(xs).toEqual([3, 1, 2]);
  });
});

describe("verdict", () => {
  const at = (median: number) => ({ median, min: median, max: median, n: 1 });

  test("verdict_atLeast_boundaryIsMet", () => {
    expect(verdict(">=", 0.85, at(0.85))).toBe("met");
    expect(verdict(">=", 0.85, at(0.849))).toBe("not met");
  });

  test("verdict_atMost_boundaryIsMet", () => {
    expect(verdict("<=", 1.5, at(1.5))).toBe("met");
    expect(verdict("<=", 1.5, at(1.51))).toBe("not met");
  });

  test("verdict_noMedian_isNotMeasured", () => {
    expect(verdict(">=", 1, null)).toBe("not measured");
    expect(verdict(">=", 1, undefined)).toBe("not measured");
    expect(verdict("<=", 1, summarize([]))).toBe("not measured");
  });
});

describe("ratios", () => {
  /** One repetition of direct-N64: wirechat's run and raw Bun's. */
  const rep = (n: number, wirechat: number, rawBun: number, wirechatExtra: Partial<RunResult> = {}) => [
    run("direct-N64", "wirechat", n, wirechat, wirechatExtra),
    run("direct-N64", "rawBun", n, rawBun),
  ];

  test("ratios_medianOfPerRepetitionRatios_notRatioOfMedians", () => {
    // Per repetition: 2/1 = 2, 3/6 = 0.5, 4/2 = 2 → median 2. Ratio of medians would be 3/2 = 1.5.
    const rs = [...rep(0, 2, 1), ...rep(1, 3, 6), ...rep(2, 4, 2)];
    expect(ratios(rs, ["direct-N64"], "wirechat", ["rawBun"])["direct-N64"]!.rawBun).toEqual({ median: 2, min: 0.5, max: 2, n: 3 });
  });

  test("ratios_failedRunOrZeroBaseline_leavesThatRepetitionOut", () => {
    const rs = [...rep(0, 9, 1, { ok: false, error: "lost" }), ...rep(1, 5, 0), ...rep(2, 3, 4)];
    expect(ratios(rs, ["direct-N64"], "wirechat", ["rawBun"])["direct-N64"]!.rawBun).toEqual({ median: 0.75, min: 0.75, max: 0.75, n: 1 });
  });

  test("ratios_baselineNeverRan_hasNoEntry", () => {
    const rs = rep(0, 2, 1);
    const out = ratios(rs, ["direct-N64"], "wirechat", ["rawBun", "nodeWs"]);
    expect(Object.keys(out["direct-N64"]!)).toEqual(["rawBun"]);
  });

  test("ratios_otherSubject_dividesThatSubject", () => {
    const rs = [run("direct-N64", "wirechat-batch", 0, 9), run("direct-N64", "wirechat", 0, 2), run("direct-N64", "rawBun", 0, 3)];
    expect(ratios(rs, ["direct-N64"], "wirechat-batch", ["rawBun"])["direct-N64"]!.rawBun!.median).toBe(3);
  });
});

describe("checkTargets", () => {
  test("checkTargets_batchTargets_readTheBatchedRatios", () => {
    const one = (median: number) => ({ median, min: median, max: median, n: 1 });
    const out = checkTargets({ "direct-N64": { rawBun: one(0.5) } }, {}, undefined, { "direct-N64": { rawBun: one(0.9) } });
    const plain = out.find((t) => t.label === "direct N=64 vs raw Bun")!;
    const batch = out.find((t) => t.label === "?batch=1 direct N=64 vs raw Bun")!;
    expect(plain.status).toBe("not met");
    expect(batch.status).toBe("met");
    expect(batch.measured!.median).toBe(0.9);
  });

  test("checkTargets_unmeasuredScenario_isNotMeasured", () => {
    const out = checkTargets({});
    expect(out.filter((t) => TARGETS.some((x) => x.label === t.label)).every((t) => t.status === "not measured")).toBe(true);
  });
});

describe("interleaved", () => {
  // The full run's own scenarios: a renamed or re-keyed scenario must still reach its targets.
  const full = scenarios(false);
  const latency = full.find((x) => x.id === "interleaved-latency-20000-wirechat")!;
  const direct = full.find((x) => x.id === "interleaved-direct-N64-wirechat-batch")!;
  const rounds = (...pairs: [subject: number, baseline: number][]) =>
    Object.fromEntries(
      pairs.flatMap(([x, y], r) => [
        [`subject_${r}`, x],
        [`baseline_${r}`, y],
        [`ratio_${r}`, x / y],
      ]),
    );

  test("interleavedSummary_poolsEveryRoundOfEveryRepetition_andCountsFailures", () => {
    const rs = [
      run(latency.id, "wirechat", 0, 0, { metrics: rounds([4, 2], [3, 2]) }),
      run(latency.id, "wirechat", 1, 0, { metrics: rounds([2, 2], [6, 2]) }),
      run(latency.id, "wirechat", 2, 0, { ok: false, error: "exited", metrics: rounds([100, 1]) }),
    ];
    const e = interleavedSummary(rs, [latency, direct])[latency.id]!;
    // Ratios 2, 1.5, 1, 3 → median 1.75; the failed repetition's 100 is not among them.
    expect(e.ratio).toEqual({ median: 1.75, min: 1, max: 3, n: 4 });
    expect(e.subjectFigure).toEqual({ median: 3.5, min: 2, max: 6, n: 4 });
    expect(e.baselineFigure!.median).toBe(2);
    expect(e).toMatchObject({ measure: "latency", rate: 20000, runs: 3, failures: 1, subject: "wirechat" });
  });

  test("interleavedSummary_scenarioWithoutRuns_isLeftOut", () => {
    expect(Object.keys(interleavedSummary([], [latency, direct]))).toEqual([]);
  });

  test("interleavedTargets_latency_judgesBothP99TargetsAndNoThroughputOne", () => {
    const rs = [run(latency.id, "wirechat", 0, 0, { metrics: rounds([1.3, 1], [1.4, 1]) })];
    const out = interleavedTargets(interleavedSummary(rs, [latency]));
    const wanted = TARGETS.filter((t) => t.scenario === "latency-20000" && t.baseline === INTERLEAVED_BASELINE);
    expect(wanted.map((t) => t.goal).sort()).toEqual([1.2, 1.5]);
    expect(out.map((t) => t.goal).sort()).toEqual([1.2, 1.5]);
    expect(out.every((t) => t.scenario === latency.id && t.measured!.median === 1.35 && t.measured!.n === 2)).toBe(true);
    expect(out.find((t) => t.goal === 1.2)!.status).toBe("not met");
    expect(out.find((t) => t.goal === 1.5)!.status).toBe("met");
  });

  test("interleavedTargets_batchDirect_judgesTheBatchTargetOnly", () => {
    const rs = [run(direct.id, "wirechat-batch", 0, 0, { metrics: rounds([8e5, 1e6], [9e5, 1e6]) })];
    const out = interleavedTargets(interleavedSummary(rs, [direct]));
    expect(out.map((t) => t.label)).toEqual(["?batch=1 direct N=64 vs raw Bun, interleaved 2 pairs of windows"]);
    expect(out[0]!.measured!.median).toBeCloseTo(0.85, 10);
    expect(out[0]!.status).toBe("met");
  });
});
