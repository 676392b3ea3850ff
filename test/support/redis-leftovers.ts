/** Prints how many keys of the shared Redis match a pattern (scripts/test.sh, after a run). */
import { countRedisKeys } from "@sieve/shared/db/testing";

const pattern = process.argv[2];
if (!pattern?.startsWith("sievetest-")) throw new Error("usage: redis-leftovers.ts 'sievetest-…*'");
console.log(await countRedisKeys(process.env.REDIS_URL ?? "redis://127.0.0.1:6379", pattern));
