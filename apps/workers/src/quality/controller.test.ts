import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { initialState, observe, sampleForRecheck, type ControllerConfig, type ControllerState } from "./controller.js";

const cfg: ControllerConfig = { ceiling: 24, minItems: 1, floor: 0.9, recover: 0.97, minSamples: 40, cooldownMs: 60_000 };

/** A fake clock and a feed of single outcomes at a given agreement (exact, no randomness). */
class Harness {
  now = 1_000_000;
  state: ControllerState = initialState(cfg);
  events: Array<{ at: number; event: string; maxItems: number }> = [];
  private fed = 0;
  feed(n: number, agreement: number, callItems = this.state.maxItems): void {
    for (let i = 0; i < n; i++) {
      // Deterministic and evenly spread: exactly `agreement` of any prefix, up to rounding.
      this.fed++;
      const agreed = Math.floor(this.fed * agreement + 1e-9) - Math.floor((this.fed - 1) * agreement + 1e-9);
      const r = observe(cfg, this.state, { agreed, total: 1, callItems }, this.now);
      this.state = r.state;
      if (r.event) this.events.push({ at: this.now, event: r.event, maxItems: r.state.maxItems });
      this.now += 1_000;
    }
  }
}

describe("maxItems controller", () => {
  test("does nothing before minSamples, then halves when agreement is under the floor", () => {
    const h = new Harness();
    h.feed(39, 0.5);
    assert.equal(h.state.maxItems, 24, "39 samples are not enough to act");
    h.feed(1, 0.5);
    assert.equal(h.state.maxItems, 12);
    assert.deepEqual(h.events.map((e) => e.event), ["lowered"]);
  });

  test("keeps lowering while agreement stays bad, but waits for the cooldown between changes", () => {
    const h = new Harness();
    h.feed(40, 0.5);
    const loweredAt = h.now - 1_000;
    h.feed(40, 0.5); // 40 s later: still within the 60 s cooldown
    assert.equal(h.state.maxItems, 12);
    h.feed(30, 0.5); // now past the cooldown
    assert.equal(h.state.maxItems, 6);
    assert.ok(h.events[1]!.at - loweredAt >= cfg.cooldownMs);
    h.now += 10 * 60_000;
    h.feed(200, 0.5);
    assert.ok(h.state.maxItems >= 1 && h.state.maxItems <= 3, `never below minItems: ${h.state.maxItems}`);
  });

  test("hysteresis: agreement between floor and recover changes nothing either way", () => {
    const h = new Harness();
    h.feed(40, 0.5);
    assert.equal(h.state.maxItems, 12);
    h.now += 10 * 60_000;
    h.feed(500, 0.93);
    assert.equal(h.state.maxItems, 12);
    assert.equal(h.events.length, 1);
  });

  test("raises again when agreement recovers, up to the configured ceiling", () => {
    const h = new Harness();
    h.feed(40, 0.5);
    h.now += 10 * 60_000;
    h.feed(40, 1.0);
    assert.equal(h.state.maxItems, 24, "a failure at 24 delays the probe back to 24, but ten minutes is past 2x cooldown");
    h.now += 10 * 60_000;
    h.feed(400, 1.0);
    assert.equal(h.state.maxItems, 24, "never above the ceiling");
  });

  test("a limit that keeps failing is probed with exponential backoff (no flapping)", () => {
    const h = new Harness();
    // Agreement is bad at 24, good at 12: the controller should settle at 12 and probe 24 rarely.
    const feedAt = (n: number) => {
      for (let i = 0; i < n; i++) h.feed(1, h.state.maxItems > 12 ? 0.5 : 1.0);
    };
    feedAt(3 * 3_600); // three hours of outcomes, one a second
    const raises = h.events.filter((e) => e.event === "raised").length;
    const lowers = h.events.filter((e) => e.event === "lowered").length;
    assert.equal(h.state.maxItems === 12 || h.state.maxItems === 24, true);
    assert.ok(lowers >= 2, `lowered ${lowers} times`);
    // With a fixed 60 s cooldown it would flip ~90 times in 3 h; backoff doubles the wait each time.
    assert.ok(raises <= 8, `raised ${raises} times in three hours`);
    const gaps = h.events.filter((e) => e.event === "raised").map((e) => e.at);
    for (let i = 2; i < gaps.length; i++) assert.ok(gaps[i]! - gaps[i - 1]! >= gaps[i - 1]! - gaps[i - 2]!, "probes get rarer");
  });

  test("outcomes of calls bigger than the current limit are ignored", () => {
    const h = new Harness();
    h.feed(40, 0.5);
    assert.equal(h.state.maxItems, 12);
    h.now += 10 * 60_000;
    h.feed(100, 0.0, 24); // late re-checks of calls sent before the lowering
    assert.equal(h.state.maxItems, 12);
    assert.equal(h.state.total, 0);
  });

  test("re-check sampling: only multi-item calls, at the configured rate", () => {
    let x = 0;
    const rand = () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    assert.equal(sampleForRecheck(1, 1, rand), false, "single-item calls are never re-checked");
    let hits = 0;
    for (let i = 0; i < 20_000; i++) if (sampleForRecheck(10, 0.05, rand)) hits++;
    assert.ok(Math.abs(hits / 20_000 - 0.05) < 0.01, `rate ${hits / 20_000}`);
    assert.equal(sampleForRecheck(10, 0, rand), false);
  });
});
