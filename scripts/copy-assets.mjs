// Copies the files the compiled code reads at run time (the simulator's calendars) into dist/.
import { cpSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
cpSync(`${root}controller/simulator/calendars`, `${root}dist/simulator/calendars`, { recursive: true });
