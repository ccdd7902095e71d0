/**
 * The HTTP surface of CONTRACT.md § 2: /health (liveness), /ready (readiness),
 * /status (operators) and /metrics (Prometheus), plus the management API router when
 * one is given. Standbys serve all of it.
 */
import { createServer, type Server } from "node:http";
import express, { type NextFunction, type Request, type Response, type Router } from "express";
import type { Logger } from "./logger.js";
import type { Metrics } from "./metrics.js";

export interface HealthReport {
  /** "running" on the leader, "standby" otherwise ("starting"/"stopping" around those). */
  schedulerStatus: string;
  /** A reason when this process is stuck (liveness must fail), else undefined. */
  stuck: string | undefined;
  /** Database and API state, shown in the body but never a 503 here. */
  details?: Record<string, unknown>;
}

export interface HttpSources {
  health(): HealthReport;
  ready(): Promise<{ ready: boolean; reason?: string }>;
  status(): Promise<Record<string, unknown>>;
  metrics: Metrics;
  /** Bring gauges read from elsewhere (queue, database counts) up to date before a scrape. */
  refreshMetrics?: () => Promise<void>;
  logger: Logger;
  adminRouter?: Router;
}

export function createApp(sources: HttpSources): express.Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);

  app.get("/health", (_req, res) => {
    const report = sources.health();
    if (report.stuck) {
      res.status(503).json({
        status: "unhealthy",
        scheduler_status: report.schedulerStatus,
        reason: report.stuck,
        ...report.details,
      });
      return;
    }
    res.status(200).json({ status: "healthy", scheduler_status: report.schedulerStatus, ...report.details });
  });

  app.get("/ready", async (_req, res) => {
    const { ready, reason } = await sources.ready();
    res.status(ready ? 200 : 503).json(ready ? { status: "ready" } : { status: "not_ready", reason });
  });

  app.get("/status", async (_req, res, next) => {
    try {
      res.status(200).json(await sources.status());
    } catch (error) {
      next(error);
    }
  });

  app.get("/metrics", async (_req, res, next) => {
    try {
      await sources.refreshMetrics?.();
      const body = await sources.metrics.registry.metrics();
      res.status(200).type(sources.metrics.registry.contentType).send(body);
    } catch (error) {
      next(error);
    }
  });

  if (sources.adminRouter) app.use("/api/v1", sources.adminRouter);

  app.use((_req, res) => {
    res.status(404).json({ error: "not_found" });
  });

  // Errors never leak a stack or a secret: one coded line to the client, details to the log.
  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    const status =
      (error as { status?: number }).status ?? (error as { statusCode?: number }).statusCode ?? 500;
    const expose = status >= 400 && status < 500;
    if (!expose) sources.logger.error({ err: error, path: req.path }, "http handler failed");
    res
      .status(status)
      .json({ error: expose ? String((error as Error).message ?? "bad request") : "internal_error" });
  });
  return app;
}

export async function listen(app: express.Express, port: number, host: string): Promise<Server> {
  return await new Promise((resolve, reject) => {
    // The header and request timeouts below are enforced on this interval (Node's default,
    // 30 s, would let a slowloris client hold a socket for headersTimeout + 30 s).
    const server = createServer({ connectionsCheckingInterval: 1000 }, app);
    server.on("error", reject);
    server.listen(port, host, () => resolve(server));
    // Bounded request handling: slow or hostile clients cannot hold sockets forever.
    server.requestTimeout = 10_000;
    server.headersTimeout = 5_000;
    server.keepAliveTimeout = 5_000;
  });
}

export async function closeServer(server: Server): Promise<void> {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections?.();
    // Connections still busy after a moment are cut so shutdown stays within its bound.
    setTimeout(() => server.closeAllConnections?.(), 1000).unref();
  });
}
