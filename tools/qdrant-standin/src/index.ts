export { startQdrantStandin, STANDIN_QDRANT_VERSION, type QdrantStandin, type QdrantStandinOptions } from "./server.js";
