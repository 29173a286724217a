import { chmodSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { type FileTree, isLink } from "./render/files.js";

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
