import Handlebars from "handlebars";
import { readdirSync, readFileSync } from "node:fs";

/**
 * Handlebars with `noEscape` (HTML escaping would corrupt scripts) and `strict` (a missing field
 * throws). Templates hold layout only; every value they print was quoted by src/shell/quote.ts.
 */
const hb = Handlebars.create();
const cache = new Map<string, Handlebars.TemplateDelegate>();
const TEMPLATE_DIR = new URL("../../../templates/", import.meta.url);
const PARTIAL_DIR = new URL("partials/", TEMPLATE_DIR);
// Shared blocks (`{{> name}}`): templates/partials/<name>.sh.hbs, registered once.
for (const f of readdirSync(PARTIAL_DIR).filter((f) => f.endsWith(".hbs")).sort()) {
  hb.registerPartial(f.replace(/\.sh\.hbs$|\.hbs$/, ""), readFileSync(new URL(f, PARTIAL_DIR), "utf8"));
}

export function renderTemplate(name: string, data: object): string {
  let t = cache.get(name);
  if (!t) {
    t = hb.compile(readFileSync(new URL(name, TEMPLATE_DIR), "utf8"), { noEscape: true, strict: true });
    cache.set(name, t);
  }
  return t(data);
}
