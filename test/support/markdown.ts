/** Code blocks of Markdown pages, for the tests that check what the docs show. */

/** The text of each fenced block of `lang` (```nix … ```) of a page, fences at line start. */
export const codeBlocks = (md: string, lang: string): string[] => [...md.matchAll(new RegExp(`^\`\`\`${lang}\\n([\\s\\S]*?)^\`\`\`$`, "gm"))].map((m) => m[1]!);
