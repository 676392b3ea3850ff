import { test } from "node:test";
import assert from "node:assert/strict";
import { DeadlineError, parseIsoDuration, resolveDeadline } from "./deadline.js";
import { planLanes, ROUTER_DEFAULTS, type RouterConfig } from "./plan.js";

const NOW = Date.parse("2026-12-01T00:00:00Z");

test("ISO 8601 durations and timestamps", () => {
  assert.equal(parseIsoDuration("PT10S"), 10_000);
  assert.equal(parseIsoDuration("PT1H"), 3_600_000);
  assert.equal(parseIsoDuration("P1D"), 86_400_000);
  assert.equal(parseIsoDuration("P1DT12H"), 129_600_000);
  assert.equal(parseIsoDuration("PT1.5S"), 1_500);
  assert.equal(parseIsoDuration("P2W"), 14 * 86_400_000);
  for (const bad of ["P", "PT", "10S", "PT10", "P1DT", "1h"]) assert.equal(parseIsoDuration(bad), undefined, bad);
  assert.equal(resolveDeadline("PT10S", NOW), NOW + 10_000);
  assert.equal(resolveDeadline("2026-12-01T18:00:00Z", NOW), NOW + 18 * 3_600_000);
  assert.equal(resolveDeadline("2026-12-01T18:00:00+01:00", NOW), NOW + 17 * 3_600_000);
  assert.throws(() => resolveDeadline("P1M", NOW), (e: unknown) => e instanceof DeadlineError && /months/.test(e.message));
  assert.throws(() => resolveDeadline("PT0S", NOW), /longer than zero/);
  assert.throws(() => resolveDeadline("2026-11-30T00:00:00Z", NOW), /in the past/);
  assert.throws(() => resolveDeadline("2026-12-01T18:00:00", NOW), /time zone/);
  assert.throws(() => resolveDeadline("tomorrow", NOW), /ISO 8601/);
});

const cfg = (over: Partial<RouterConfig> = {}): RouterConfig => ({ ...ROUTER_DEFAULTS, local: { itemsPerS: 10, backlogItems: 0 }, flex: true, batch: true, ...over });

test("each deadline gets the cheapest lane that meets it", () => {
  // Local GPU first when it can finish in time: 10 items/s, 20 items -> ~5 s.
  const local = planLanes(20, 10_000, cfg());
  assert.ok(local.ok);
  assert.deepEqual(local.segments.map((x) => [x.lane, x.count]), [["local", 20]]);
  assert.match(local.segments[0]!.reason, /local GPU: done in ~5 s at 10 items\/s behind 0 queued, within 10 s/);
  // No local lane: PT10S -> realtime, PT1H -> flex, P1D -> batch.
  const lanes = (d: number, c: RouterConfig) => (planLanes(50, d, c) as { segments: Array<{ lane: string; count: number }> }).segments.map((x) => `${x.lane}:${x.count}`);
  assert.deepEqual(lanes(10_000, cfg({ local: undefined })), ["realtime:50"]);
  assert.deepEqual(lanes(3_600_000, cfg({ local: undefined })), ["flex:50"]);
  assert.deepEqual(lanes(86_400_000, cfg({ local: undefined })), ["batch:50"]);
  // Without flex and batch, long deadlines go realtime.
  assert.deepEqual(lanes(86_400_000, cfg({ local: undefined, flex: false, batch: false })), ["realtime:50"]);
});

test("local capacity is filled up to what finishes in time; the rest takes the next lane", () => {
  // 10 items/s, 60 queued, 10 s deadline: budget 8 s - 3 s call = 5 s -> 50 items of room, minus 60 queued -> none.
  const busy = planLanes(30, 10_000, cfg({ local: { itemsPerS: 10, backlogItems: 60 } }));
  assert.ok(busy.ok);
  assert.deepEqual(busy.segments.map((x) => [x.lane, x.count]), [["realtime", 30]]);
  assert.match(busy.segments[0]!.reason, /local GPU lane busy \(60 queued/);
  // 20 queued: room for 30 of 100 urgent items.
  const part = planLanes(100, 10_000, cfg({ local: { itemsPerS: 10, backlogItems: 20 } }));
  assert.ok(part.ok);
  assert.deepEqual(part.segments.map((x) => [x.lane, x.count]), [["local", 30], ["realtime", 70]]);
  assert.match(part.segments[1]!.reason, /local GPU lane full/);
});

test("items with a half-price alternative only keep a short local queue; urgent ones may fill the horizon", () => {
  // 2 s of work at 10 items/s = 20 items of queue for a 1 h item.
  const long = planLanes(1_000, 3_600_000, cfg({ local: { itemsPerS: 10, backlogItems: 5 } }));
  assert.ok(long.ok);
  assert.deepEqual(long.segments.map((x) => [x.lane, x.count]), [["local", 15], ["flex", 985]]);
  const urgent = planLanes(1_000, 200_000, cfg({ local: { itemsPerS: 10, backlogItems: 500 }, flex: false }));
  assert.ok(urgent.ok);
  assert.equal(urgent.segments[0]!.count, 700);
});

test("a deadline no lane can meet is refused up front, saying why", () => {
  const r = planLanes(10, 2_000, cfg({ local: undefined }));
  assert.equal(r.ok, false);
  assert.match((r as { reason: string }).reason, /realtime needs about 6.3 s/);
  // With a fast idle local lane a short deadline is fine.
  const fast = planLanes(5, 5_000, cfg({ localCallMs: 1_000 }));
  assert.ok(fast.ok && fast.segments[0]!.lane === "local");
});

test("with prices, the cheapest cloud lane that meets the deadline wins", () => {
  const lane = (d: number, costPerItem: RouterConfig["costPerItem"]) => (planLanes(10, d, cfg({ local: undefined, costPerItem })) as { segments: Array<{ lane: string; reason: string }> }).segments[0]!;
  // A flex model dearer than realtime at half price: realtime wins even with an hour to spare.
  assert.equal(lane(3_600_000, { realtime: 0.0001, flex: 0.0003, batch: 0.00005 }).lane, "realtime");
  const flex = lane(3_600_000, { realtime: 0.0002, flex: 0.0001, batch: 0.0001 });
  assert.equal(flex.lane, "flex");
  assert.match(flex.reason, /~\$0\.100 per 1,000 items/);
  assert.equal(lane(86_400_000, { realtime: 0.0002, flex: 0.0001, batch: 0.0001 }).lane, "batch", "ties: batch before flex");
});
