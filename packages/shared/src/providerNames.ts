/**
 * The LLM providers Sieve can drive, named once. Schemas (`z.enum(PROVIDERS)`), queue names and
 * route parsing all derive from this list; adding a provider starts here (docs/architecture.md).
 */
export const PROVIDERS = ["openai", "anthropic", "vllm"] as const;

export type ProviderName = (typeof PROVIDERS)[number];

export function isProviderName(s: string): s is ProviderName {
  return (PROVIDERS as readonly string[]).includes(s);
}
