/**
 * A TCP proxy on loopback (port 0) in front of a server, that a test can cut to make the
 * server unreachable for one client and then restore:
 *
 *   const proxy = await startTcpProxy(5432);   // connect to 127.0.0.1:proxy.port
 *   proxy.cut();        // black hole: open connections stall, new ones are accepted and stall
 *   proxy.cut("reset"); // or: every connection is reset, new ones are reset at once
 *   proxy.restore();    // stalled connections are dropped; new connections work again
 *   await proxy.close();
 *
 * A black hole is the harder case for a client (nothing fails, everything waits), as when a
 * network partition drops packets; "reset" is a server or firewall refusing.
 */
import net from "node:net";

export type CutMode = "blackhole" | "reset";

export interface TcpProxy {
  readonly port: number;
  /** Connections currently open through the proxy. */
  readonly connections: number;
  cut(mode?: CutMode): void;
  restore(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number, targetHost = "127.0.0.1"): Promise<TcpProxy> {
  let mode: CutMode | undefined;
  const pairs = new Set<{ client: net.Socket; server: net.Socket | undefined }>();

  const drop = (pair: { client: net.Socket; server: net.Socket | undefined }) => {
    pair.client.destroy();
    pair.server?.destroy();
    pairs.delete(pair);
  };

  const server = net.createServer((client) => {
    const pair: { client: net.Socket; server: net.Socket | undefined } = { client, server: undefined };
    pairs.add(pair);
    client.on("error", () => drop(pair));
    client.on("close", () => drop(pair));
    if (mode === "reset") return drop(pair);
    if (mode === "blackhole") return; // accepted, never connected: the client waits
    const upstream = net.connect(targetPort, targetHost);
    pair.server = upstream;
    upstream.on("error", () => drop(pair));
    upstream.on("close", () => drop(pair));
    // Forward by hand so that a cut can swallow bytes in flight.
    client.on("data", (chunk) => {
      if (mode === undefined) upstream.write(chunk);
    });
    upstream.on("data", (chunk) => {
      if (mode === undefined) client.write(chunk);
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;

  return {
    port,
    get connections() {
      return pairs.size;
    },
    cut(how: CutMode = "blackhole") {
      mode = how;
      if (how === "reset") for (const pair of [...pairs]) drop(pair);
    },
    restore() {
      // Connections that lived through a black hole have lost bytes: they cannot be trusted.
      if (mode === "blackhole") for (const pair of [...pairs]) drop(pair);
      mode = undefined;
    },
    async close() {
      for (const pair of [...pairs]) drop(pair);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
