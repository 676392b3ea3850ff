export * from "./core.js";
export * from "./cache.js";
export * from "./batch.js";
export * from "./quality.js";
