export * from "./core.js";
export * from "./cache.js";
export * from "./batch.js";
export * from "./idempotency.js";
export * from "./console.js";
export * from "./quality.js";
