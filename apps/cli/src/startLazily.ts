/**
 * `sieve start` loads the server's code (start.ts) only when asked, so the client commands stay
 * light. Its own module because main.ts cannot hold the dynamic import: tsx's import lexer fails
 * on main.ts's shebang line once the file contains one.
 */
export async function startLazily(): Promise<void> {
  const { start } = await import("./start.js");
  start();
}
