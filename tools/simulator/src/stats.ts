/** Counters the simulator keeps about itself, served by `GET /_sim/stats` and `stats()`. */

export type SimProvider = "openai" | "anthropic" | "vllm";

export interface TokenCounters {
  /** Prompt / input tokens, including cached ones (OpenAI's prompt_tokens; Anthropic input + cache read + cache write). */
  prompt: number;
  completion: number;
  /** Read from the prompt cache (OpenAI cached_tokens, Anthropic cache_read_input_tokens, vLLM prefix hits). */
  cached: number;
  /** Written to the prompt cache (Anthropic cache_creation_input_tokens). */
  cacheCreation: number;
}

export interface InjectedCounters {
  rateLimited: number;
  serverErrors: number;
  timeouts: number;
  truncated: number;
  droppedItems: number;
  duplicatedItems: number;
  badValues: number;
  /** Entries omitted because the item text holds the poison marker. */
  poisonedItems: number;
}

export interface SimulatorStats {
  /** Requests received per route ("POST /v1/chat/completions"); "unmatched" for unknown routes. */
  requests: Record<string, number>;
  /** Responses sent per HTTP status ("200", "429"). Timed-out requests send none. */
  statuses: Record<string, number>;
  injected: InjectedCounters;
  /** Answers cut because they exceeded the request's own max_tokens (not a fault). */
  maxTokensCut: number;
  /** Items in generation requests that reached the answer stage (every attempt counts; not those failed by 429/5xx/timeout). */
  itemsSeen: number;
  tokens: TokenCounters;
  tokensByProvider: Record<SimProvider, TokenCounters>;
}

const zeroTokens = (): TokenCounters => ({ prompt: 0, completion: 0, cached: 0, cacheCreation: 0 });

function empty(): SimulatorStats {
  return {
    requests: {},
    statuses: {},
    injected: {
      rateLimited: 0,
      serverErrors: 0,
      timeouts: 0,
      truncated: 0,
      droppedItems: 0,
      duplicatedItems: 0,
      badValues: 0,
      poisonedItems: 0,
    },
    maxTokensCut: 0,
    itemsSeen: 0,
    tokens: zeroTokens(),
    tokensByProvider: { openai: zeroTokens(), anthropic: zeroTokens(), vllm: zeroTokens() },
  };
}

export class StatsRecorder {
  private s: SimulatorStats = empty();

  reset(): void {
    this.s = empty();
  }

  snapshot(): SimulatorStats {
    return structuredClone(this.s);
  }

  request(route: string): void {
    this.s.requests[route] = (this.s.requests[route] ?? 0) + 1;
  }

  status(code: number): void {
    const k = String(code);
    this.s.statuses[k] = (this.s.statuses[k] ?? 0) + 1;
  }

  injected(kind: keyof InjectedCounters, n = 1): void {
    this.s.injected[kind] += n;
  }

  maxTokensCut(): void {
    this.s.maxTokensCut++;
  }

  items(n: number): void {
    this.s.itemsSeen += n;
  }

  tokens(provider: SimProvider, t: Partial<TokenCounters>): void {
    for (const target of [this.s.tokens, this.s.tokensByProvider[provider]]) {
      target.prompt += t.prompt ?? 0;
      target.completion += t.completion ?? 0;
      target.cached += t.cached ?? 0;
      target.cacheCreation += t.cacheCreation ?? 0;
    }
  }
}
