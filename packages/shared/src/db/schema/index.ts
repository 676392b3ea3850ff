export * from "./core.js";
export * from "./cache.js";
