/** PostgreSQL lease back end (issue 5): being written. */
import type { Elector, ElectorOptions } from "./elector.js";
import { SchedulerError } from "./errors.js";

export function createPostgresElector(_options: ElectorOptions): Elector {
  throw new SchedulerError("INTERNAL", "LEADER_ELECTION=postgres is not implemented yet");
}
