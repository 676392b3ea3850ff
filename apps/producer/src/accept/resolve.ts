/**
 * Decisions every submission gets the same way before anything is stored: its route, its queue,
 * its deadline and its job id. (Its batch key: `batchKeyFor`, packages/shared/src/batchKey.ts;
 * its cache policy: `resolveCachePolicy`, packages/shared/src/dedup/policy.ts.)
 */
import { randomUUID } from "node:crypto";
import type { Queue } from "bullmq";
import { DeadlineError, defaultRoute, resolveDeadline, type ProviderName, type Route, type TaskParams } from "@sieve/shared";
import type { ApiContext } from "../context.js";
import { RejectedInput, Unavailable } from "../errors.js";

/** The route a request names (provider, model), or the task's configured route. */
export function resolveRoute(ctx: ApiContext, params: TaskParams, provider?: ProviderName, model?: string): Route {
  if (provider) {
    const ep = ctx.endpoints.get(provider);
    if (!ep) {
      throw new RejectedInput(`provider: "${provider}" is not configured on this server (configured: ${[...ctx.endpoints.keys()].join(", ")})`, [{ field: "provider", message: "not configured" }]);
    }
    return { provider, model: model ?? ep.defaultModel };
  }
  const route = defaultRoute(ctx.env, ctx.endpoints, params.task);
  return model ? { provider: route.provider, model } : route;
}

/** The realtime queue of a route's provider. */
export function queueFor(ctx: ApiContext, route: Route): Queue {
  const queue = ctx.queues.get(route.provider);
  if (!queue) throw new Unavailable(`no queue for provider ${route.provider}`);
  return queue;
}

/** A request's `deadline` as ms since the epoch. */
export function deadlineOf(deadline: string, now: number): number {
  try {
    return resolveDeadline(deadline, now);
  } catch (e) {
    if (e instanceof DeadlineError) throw new RejectedInput(`deadline: ${e.message}`, [{ field: "deadline", message: e.message }]);
    throw e;
  }
}

export function newJobId(): string {
  return `job_${randomUUID().replaceAll("-", "")}`;
}
