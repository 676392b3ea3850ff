/**
 * One signal per provider call that fires on the caller's abort OR on Sieve's own deadline.
 *
 * The SDKs' `timeout` option only covers the wait for response HEADERS (Stainless clients clear
 * their timer once `fetch` resolves), so a server that sends headers and then stalls the body
 * would hang the call. This deadline covers the whole call, body included.
 */
export interface CallDeadline {
  /** Pass to the SDK request options. */
  signal: AbortSignal;
  /** Fired by the timer only (not by the caller). */
  deadline: AbortSignal;
  /** Clears the timer and detaches from the caller's signal. Call in `finally`. */
  dispose(): void;
}

export function callDeadline(timeoutMs: number, callerSignal?: AbortSignal): CallDeadline {
  const deadline = new AbortController();
  const combined = new AbortController();
  const timer = setTimeout(() => {
    const reason = new DOMException(`call timed out after ${timeoutMs} ms`, "TimeoutError");
    deadline.abort(reason);
    combined.abort(reason);
  }, timeoutMs);
  const onCallerAbort = () => combined.abort(callerSignal?.reason);
  if (callerSignal?.aborted) onCallerAbort();
  else callerSignal?.addEventListener("abort", onCallerAbort, { once: true });
  return {
    signal: combined.signal,
    deadline: deadline.signal,
    dispose() {
      clearTimeout(timer);
      callerSignal?.removeEventListener("abort", onCallerAbort);
    },
  };
}
