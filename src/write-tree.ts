import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { basename, dirname, isAbsolute, join, relative } from "node:path";
import { type FileTree, isLink } from "./render/files.js";
import { OUT } from "./model/paths.js";
import { TREE_MARKER } from "./render/manifest.js";

/** Write every entry of a tree under `dir`: files with their modes (whatever the umask), links as links. */
export function writeEntries(tree: FileTree, dir: string): void {
  for (const d of new Set([...tree.keys()].map((p) => dirname(join(dir, p))))) mkdirSync(d, { recursive: true });
  for (const e of tree.values()) {
    const p = join(dir, e.path);
    rmSync(p, { force: true });
    if (isLink(e)) symlinkSync(e.link, p);
    else {
      writeFileSync(p, e.content, { mode: e.mode });
      chmodSync(p, e.mode);
    }
  }
}

/** True when `inner` is `outer` or lies below it. */
const within = (outer: string, inner: string) => {
  const r = relative(outer, inner);
  return r === "" || (r !== ".." && !r.startsWith("../") && !isAbsolute(r));
};

/** The real path of `p`, resolving as much of it as exists (its missing tail kept as given). */
function realish(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    const parent = dirname(p);
    return parent === p ? p : join(realish(parent), basename(p));
  }
}

/**
 * Why the absolute `out` must not be replaced by a rendered tree, or null when it may: it is `/`,
 * it is or holds `config`, or it exists and is not a directory vmsilo-gen wrote (a link, a file,
 * or a directory without the marked manifest). Replacing deletes everything at `out`.
 */
export function outRefusal(out: string, config: string): string | null {
  if (dirname(out) === out) return "is the root directory; give a directory of its own";
  const realOut = realish(out);
  if (within(out, config) || within(realOut, realish(config))) return `holds the configuration ${config}, which replacing it would delete; render into another directory`;
  let st;
  try {
    st = lstatSync(out);
  } catch {
    return null;
  }
  if (st.isSymbolicLink()) return "is a symbolic link; give the directory itself";
  if (!st.isDirectory()) return "exists and is not a directory";
  let manifest: unknown;
  try {
    manifest = JSON.parse(readFileSync(join(out, OUT.manifest), "utf8"));
  } catch {
    manifest = null;
  }
  if (typeof manifest !== "object" || manifest === null || (manifest as Record<string, unknown>)[TREE_MARKER] !== 1) {
    return `exists and is not a tree vmsilo-gen rendered (its ${OUT.manifest} has no "${TREE_MARKER}": 1); give a new path, or one vmsilo-gen rendered before`;
  }
  return null;
}

/** Write the whole tree into a sibling temporary directory, then move it into place (all or nothing). */
export function writeTreeAtomically(tree: FileTree, out: string): void {
  const parent = dirname(out);
  mkdirSync(parent, { recursive: true });
  const tmp = mkdtempSync(join(parent, `.${basename(out)}.tmp-`));
  try {
    writeEntries(tree, tmp);
    chmodSync(tmp, 0o755); // mkdtemp makes it 0700; the tree is meant to be read by everyone
    if (existsSync(out)) {
      const old = `${tmp}.old`;
      renameSync(out, old);
      renameSync(tmp, out);
      rmSync(old, { recursive: true, force: true });
    } else renameSync(tmp, out);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}
