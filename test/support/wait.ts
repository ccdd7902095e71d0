type Truthy<T> = Exclude<T, false | 0 | "" | null | undefined>;

/** Poll until a condition holds; shared by the tests that wait on other processes or loops. */
export async function waitFor<T>(
  condition: () => T | Promise<T>,
  timeoutMs: number,
  label: string,
  intervalMs = 10,
): Promise<Truthy<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value as Truthy<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${label}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
