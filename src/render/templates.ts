import Handlebars from "handlebars";
import { readFileSync } from "node:fs";

/**
 * Handlebars with `noEscape` (HTML escaping would corrupt scripts) and `strict` (a missing field
 * throws). Templates hold layout only; every value they print was quoted by src/shell/quote.ts.
 */
const hb = Handlebars.create();
const cache = new Map<string, Handlebars.TemplateDelegate>();
const TEMPLATE_DIR = new URL("../../../templates/", import.meta.url);

export function renderTemplate(name: string, data: object): string {
  let t = cache.get(name);
  if (!t) {
    t = hb.compile(readFileSync(new URL(name, TEMPLATE_DIR), "utf8"), { noEscape: true, strict: true });
    cache.set(name, t);
  }
  return t(data);
}
